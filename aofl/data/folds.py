"""Grouped k-fold cross-validation over the training dialogues (the only place choices are made).

A fold never splits a group: a dialogue is always whole on one side, and on IEMOCAP the group is
the recording session (two actors), so a held-out fold has speakers the training folds never saw,
as the test split (Session 5) does. MELD and synthetic data are grouped by dialogue.

Each fold becomes a `ConversationSet` whose ``train`` split is the other folds' dialogues and whose
``valid`` and ``test`` splits are the held-out fold; the dataset's own valid and test splits are
not used at all.

The text view `tuned` is cross-fitted over the same groups (`cross_fit_folds`): each training
dialogue is embedded by a model that did not train on its group. Its folds are assigned as they
always were (IEMOCAP: one per session; others: a seeded round robin over the dialogues), so the
prepared views stay the ones their cache names.

`aofl.cv` is this module under its public name; it lives in `aofl.data` because the data layer
(`tuned_view`) uses it, and a layer imports only the ones below it.
"""

from __future__ import annotations

import random
import re

from .conversation import ConversationSet, DataError, Dialogue

__all__ = ["session_of", "group_of", "grouped_folds", "fold_dataset", "default_folds", "cross_fit_folds"]

_IEMOCAP_SESSION = re.compile(r"^(Ses\d\d)")


def session_of(dataset_name: str, dialogue_id: str) -> str | None:
    """IEMOCAP's recording session of a dialogue (`Ses01` from Ses01F_impro01); None elsewhere."""
    if dataset_name.startswith("iemocap"):
        m = _IEMOCAP_SESSION.match(dialogue_id)
        if m:
            return m.group(1)
    return None


def group_of(dataset_name: str, dialogue: Dialogue) -> str:
    """The unit a fold keeps whole: IEMOCAP's session (from ids like Ses01F_impro01), else the dialogue."""
    return session_of(dataset_name, dialogue.dialogue_id) or dialogue.dialogue_id


def default_folds(dataset_name: str) -> int:
    """IEMOCAP: leave one session out over Sessions 1-4; others: 5 folds."""
    return 4 if dataset_name.startswith("iemocap") else 5


def grouped_folds(dataset: ConversationSet, k: int, seed: int = 0, split: str = "train") -> list[list[int]]:
    """k lists of indices into `dataset.split(split)`: fold i's held-out dialogues.

    Groups are dealt to folds so the folds' utterance counts stay even (largest group first, each to
    the fold with the fewest utterances so far; ties and the order of equal groups by a seeded
    shuffle). With as many groups as folds this is leave-one-group-out, in the groups' sorted order."""
    dialogues = dataset.split(split)
    groups: dict[str, list[int]] = {}
    for i, d in enumerate(dialogues):
        groups.setdefault(group_of(dataset.name, d), []).append(i)
    if k < 2:
        raise DataError("cross-validation needs at least 2 folds")
    if len(groups) < k:
        raise DataError(f"{len(groups)} groups in {dataset.name}/{split} cannot make {k} folds")
    names = sorted(groups)
    if len(names) == k:
        return [groups[g] for g in names]
    random.Random(seed).shuffle(names)
    size = {g: sum(len(dialogues[i]) for i in groups[g]) for g in names}
    names.sort(key=lambda g: -size[g])  # stable: equal sizes keep the shuffled order
    folds: list[list[int]] = [[] for _ in range(k)]
    load = [0] * k
    for g in names:
        f = min(range(k), key=lambda j: (load[j], j))
        folds[f].extend(groups[g])
        load[f] += size[g]
    return [sorted(f) for f in folds]


def fold_dataset(dataset: ConversationSet, held_out: list[int], split: str = "train") -> ConversationSet:
    """The dataset of one fold: train = the other dialogues, valid = test = the held-out ones."""
    dialogues = dataset.split(split)
    out = set(held_out)
    train = [d for i, d in enumerate(dialogues) if i not in out]
    held = [dialogues[i] for i in sorted(out)]
    if not train or not held:
        raise DataError("a fold needs dialogues on both sides")
    return ConversationSet(
        name=dataset.name,
        label_names=list(dataset.label_names),
        modalities=list(dataset.modalities),
        splits={"train": train, "valid": held, "test": held},
        description=f"{dataset.name}: cross-validation fold ({len(held)} held-out dialogues)",
        meta=dict(dataset.meta),
    )


def cross_fit_folds(dataset_name: str, dialogue_ids: list[str], folds: int) -> list[int]:
    """Fold index per training dialogue for cross-fitting a view (`aofl.data.tuned_view`).

    Groups as `group_of`: when every dialogue has an IEMOCAP session, one fold per session in
    sorted order (whatever `folds` says); otherwise each dialogue is its own group, dealt round
    robin over `folds` in a seeded order (numpy's generator, seed 0)."""
    sessions = [session_of(dataset_name, d) for d in dialogue_ids]
    if all(sessions):
        names = sorted(set(sessions))
        return [names.index(s) for s in sessions]
    import numpy as np  # here: grouped_folds, the CV of every study, needs none

    order = np.random.default_rng(0).permutation(len(dialogue_ids))
    fold = np.empty(len(dialogue_ids), int)
    fold[order] = np.arange(len(dialogue_ids)) % folds
    return fold.tolist()
