"""Synthetic conversations with planted shared and specific factors (README.md, "Data").

Per utterance i of a dialogue:
- a label y_i from a Markov chain that tends to stay on the same emotion (emotion carries
  across turns);
- a shared factor s_i in R^k_shared: a class mean mu_{y_i} (scaled by `shared_strength`) plus a
  dialogue-level drift that follows an AR(1) process over turns, plus noise. It is the same for
  every modality: this is what the shared features g_m should recover;
- a specific factor p_{m,i} in R^k_specific per modality: a modality-own nuisance (style,
  channel: N(0, 1)), a speaker offset, and for some class pairs the only information that
  separates them (`ONLY_IN`): classes whose shared means coincide and differ in exactly one
  modality's specific factor (like the paper's Figure 1 fear/visual example);
- the modality feature x_m = A_m [s; p_m] + 0.5 tanh(B_m [s; p_m]) + noise, with random
  A_m, B_m (a fixed random linear + nonlinear map into a d_m-dimensional space).

The factors are stored per utterance (`extras["factor:shared"]`, `extras["factor:<m>"]`) so
the app can score how well learned features recover them. Everything is seeded: the same
arguments give bit-identical data.
"""

from __future__ import annotations

import json

import numpy as np

from .conversation import ConversationSet, Dialogue

SYNTHETIC_RECIPE_VERSION = "synthetic/v1"  # bump when the generator's output for given arguments changes

__all__ = ["make_synthetic", "SYNTHETIC_LABELS", "ONLY_IN", "DEFAULT_DIMS"]

SYNTHETIC_LABELS = ["happy", "sad", "neutral", "angry", "excited", "fearful"]
DEFAULT_DIMS = {"audio": 512, "text": 768, "visual": 1000}  # MultiEMO's unimodal dims
# class pairs that share their shared-factor mean and are told apart only by one modality
ONLY_IN = {("sad", "fearful"): "visual", ("angry", "excited"): "audio"}


def make_synthetic(
    n_dialogues: int = 150,
    seed: int = 0,
    dims: dict[str, int] | None = None,
    shared_strength: float = 1.0,
    specific_strength: float = 1.0,
    noise: float = 1.0,
    k_shared: int = 8,
    k_specific: int = 8,
    turns: tuple[int, int] = (20, 70),
    stay_prob: float = 0.6,
    split_fractions: tuple[float, float] = (0.72, 0.08),
) -> ConversationSet:
    """Generate the dataset. Defaults: 150 dialogues, ~6.7k utterances, 6 emotions, 3 modalities
    (IEMOCAP has 151 dialogues, 7.4k utterances, 6 emotions)."""
    dims = dict(DEFAULT_DIMS if dims is None else dims)
    # every argument of the generator: the data's recipe, which the fingerprint hashes (not the floats)
    recipe = json.dumps(
        {
            "generator": SYNTHETIC_RECIPE_VERSION,
            "n_dialogues": n_dialogues,
            "seed": seed,
            "dims": dims,
            "strengths": [shared_strength, specific_strength, noise],
            "k": [k_shared, k_specific],
            "turns": list(turns),
            "stay_prob": stay_prob,
            "split_fractions": list(split_fractions),
        },
        sort_keys=True,
    )
    if len(dims) < 2:
        raise ValueError("the synthetic source needs at least 2 modalities")
    modalities = list(dims)
    rng = np.random.default_rng(seed)
    n_classes = len(SYNTHETIC_LABELS)
    cls = {name: i for i, name in enumerate(SYNTHETIC_LABELS)}

    # class means in shared space; paired classes share their mean
    mu = rng.normal(size=(n_classes, k_shared))
    mu /= np.linalg.norm(mu, axis=1, keepdims=True) / np.sqrt(k_shared)
    for (a, b), _m in ONLY_IN.items():
        mu[cls[b]] = mu[cls[a]]
    # per modality: a class code in specific space, nonzero only for the classes it separates
    code = {m: np.zeros((n_classes, k_specific)) for m in modalities}
    for (a, b), m in ONLY_IN.items():
        if m in code:
            v = rng.normal(size=k_specific)
            v *= np.sqrt(k_specific) / np.linalg.norm(v)
            code[m][cls[a]], code[m][cls[b]] = v, -v
    # random maps [s; p_m] -> x_m
    k = k_shared + k_specific
    lin = {m: rng.normal(size=(k, d)) / np.sqrt(k) for m, d in dims.items()}
    nonlin = {m: rng.normal(size=(k, d)) / np.sqrt(k) for m, d in dims.items()}
    prior = np.array([0.10, 0.16, 0.24, 0.14, 0.18, 0.18])[:n_classes]
    prior /= prior.sum()

    dialogues = []
    for di in range(n_dialogues):
        n = int(rng.integers(turns[0], turns[1] + 1))
        n_speakers = 2
        speaker_offsets = {m: rng.normal(scale=0.5, size=(n_speakers, k_specific)) for m in modalities}
        labels = np.empty(n, dtype=np.int64)
        labels[0] = rng.choice(n_classes, p=prior)
        for i in range(1, n):
            labels[i] = labels[i - 1] if rng.random() < stay_prob else rng.choice(n_classes, p=prior)
        spk = rng.integers(0, n_speakers, size=n)
        spk[0] = 0
        # dialogue-level drift of the shared factor, carried across turns (AR(1))
        drift = np.empty((n, k_shared))
        drift[0] = rng.normal(scale=0.3, size=k_shared)
        for i in range(1, n):
            drift[i] = 0.8 * drift[i - 1] + rng.normal(scale=0.18, size=k_shared)
        shared = shared_strength * mu[labels] + drift + 1.6 * noise * rng.normal(size=(n, k_shared))
        feats, extras = {}, {"factor:shared": shared.astype(np.float32)}
        for m in modalities:
            specific = (
                0.4 * specific_strength * code[m][labels]
                + rng.normal(size=(n, k_specific))
                + speaker_offsets[m][spk]
            )
            z = np.concatenate([shared, specific], axis=1)  # [n, k]
            x = z @ lin[m] + 0.5 * np.tanh(z @ nonlin[m]) + 0.5 * noise * rng.normal(size=(n, dims[m]))
            feats[m] = x.astype(np.float32)
            extras[f"factor:{m}"] = specific.astype(np.float32)
        dialogues.append(
            Dialogue(
                dialogue_id=f"syn{di:03d}",
                speakers=[f"S{di:03d}{'AB'[s]}" for s in spk],
                labels=labels,
                features=feats,
                extras=extras,
                text=[f"synthetic turn {i} by speaker {'AB'[s]}" for i, s in enumerate(spk)],
            )
        )
    n_train = int(round(split_fractions[0] * n_dialogues))
    n_valid = max(1, int(round(split_fractions[1] * n_dialogues)))
    splits = {
        "train": dialogues[:n_train],
        "valid": dialogues[n_train : n_train + n_valid],
        "test": dialogues[n_train + n_valid :],
    }
    return ConversationSet(
        name="synthetic",
        label_names=list(SYNTHETIC_LABELS),
        modalities=modalities,
        splits=splits,
        description=(
            f"synthetic conversations (seed {seed}): planted shared factor ({k_shared}-d) and "
            f"per-modality specific factors ({k_specific}-d); {', '.join(f'{a}/{b} only in {m}' for (a, b), m in ONLY_IN.items())}"
        ),
        meta={
            "seed": seed,
            "n_dialogues": n_dialogues,
            "dims": dims,
            "shared_strength": shared_strength,
            "specific_strength": specific_strength,
            "noise": noise,
            "view_recipes": {m: recipe for m in modalities},
        },
    )
