"""MultiEMO and DialogueRNN feature pickles (README.md, "Data").

Layouts (shared/data/MANIFEST.md, and MultiEMO's own loaders):

* ``<root>/Speakers.pkl`` unpickles (encoding='latin1') to the 9-tuple
  ``(videoIDs, videoSpeakers, videoLabels, videoText, videoAudio, videoVisual, videoSentence,
  trainVid, testVid)`` for IEMOCAP, and to a 10-tuple with the same first 9 plus one trailing
  element for MELD. videoSpeakers holds 'M'/'F' per turn (IEMOCAP) or a one-hot speaker slot
  per turn (MELD); videoLabels the class index per turn (IEMOCAP: happy, sad, neutral, angry,
  excited, frustrated; MELD: neutral, surprise, fear, sadness, joy, disgust, anger).
* ``<root>/TextFeatures.pkl``, ``AudioFeatures.pkl``, ``VisualFeatures.pkl``: each a dict
  dialogue id -> array [n_utterances, dim] (768-d EmoBERTa text, 512-d audio, 1000-d visual).
* DialogueRNN's ``IEMOCAP_features_raw.pkl`` is the same 9-tuple with the features inside it
  (videoText / videoAudio / videoVisual): `load_dialoguernn`.

All pickles go through the restricted unpickler with only numpy's array-reconstruction globals
allowed (`safe_load(..., allow_numpy=True)`): a pickle that names any other global is refused
(DataError whose __cause__ is the UnsafePickleError).

Splits: the files only have train and test ids. ``valid`` is carved out of train: the ids of
`valid_ids` if given; else, when the COSMIC metadata of the same dataset is in the data
directory, its validation dialogues (IEMOCAP: the 12 COSMIC valid dialogues; MELD: dev) when
they are all in trainVid; else a seeded `valid_fraction` of trainVid. Dialogue ids are strings
(MELD's ints as str, the numbering COSMIC uses too); when the COSMIC metadata matches, MELD
speakers and text come from the clean CSVs (names, UTF-8), otherwise speakers are
``speaker<slot>`` and the text is videoSentence.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import AOFLError
from ..io.safe_pickle import UnsafePickleError, safe_load
from . import real
from .conversation import ConversationSet, DataError, Dialogue
from .paths import data_dir as default_data_dir
from .real import IEMOCAP_LABELS, MELD_LABELS, missing_dir_note
from .validation import validate_dataset

__all__ = [
    "MULTIEMO_DIMS",
    "MULTIEMO_FILES",
    "multiemo_dir",
    "multiemo_available",
    "load_multiemo",
    "load_dialoguernn",
    "read_speakers_tuple",
    "check_speakers_tuple",
]

MULTIEMO_DIMS = {"text": 768, "audio": 512, "visual": 1000}
MULTIEMO_FILES = {"text": "TextFeatures.pkl", "audio": "AudioFeatures.pkl", "visual": "VisualFeatures.pkl"}
_DIRNAME = {"iemocap": "IEMOCAP", "meld": "MELD"}


def _dataset(name: str) -> str:
    key = str(name).lower()
    if key not in _DIRNAME:
        raise DataError(f"unknown MultiEMO dataset {name!r}; choose iemocap or meld")
    return key


def multiemo_dir(name: str, data_dir=None) -> Path:
    """``<data dir>/multiemo/<IEMOCAP|MELD>`` (where `python -m aofl data download <name>-multiemo` puts them)."""
    if data_dir is None:
        data_dir = default_data_dir()
    return Path(data_dir).expanduser() / "multiemo" / _DIRNAME[_dataset(name)]


def multiemo_available(name: str, data_dir=None) -> bool:
    root = multiemo_dir(name, data_dir)
    return all((root / f).is_file() for f in ["Speakers.pkl", *MULTIEMO_FILES.values()])


def _load(path: Path, allow_unsafe: bool | None = None):
    try:
        return safe_load(path, allow_numpy=True, encoding="latin1", allow_unsafe=allow_unsafe)
    except UnsafePickleError as e:
        raise DataError(f"refusing to load {path}: {e}") from e
    except FileNotFoundError as e:
        raise DataError(f"{path} not found") from e
    except (AOFLError, OSError) as e:  # CorruptPickleError names the file and what is wrong
        raise DataError(f"cannot read {path}: {e}") from e


_TUPLE_FIELDS = (
    "videoIDs",
    "videoSpeakers",
    "videoLabels",
    "videoText",
    "videoAudio",
    "videoVisual",
    "videoSentence",
    "trainVid",
    "testVid",
)
_ID_TYPES = (str, bytes, int, np.integer)


def read_speakers_tuple(path, allow_unsafe: bool | None = None) -> tuple:
    """The 9-tuple (IEMOCAP) / first 9 of the 10-tuple (MELD) of a Speakers.pkl-layout file, checked."""
    path = Path(path)
    return check_speakers_tuple(_load(path, allow_unsafe), path)


def check_speakers_tuple(obj, source="the pickle") -> tuple:
    """The first 9 fields of a MultiEMO/DialogueRNN tuple after checking its layout; DataError naming
    the field, what was expected and what was found."""
    if not isinstance(obj, (tuple, list)) or len(obj) not in (9, 10):
        try:  # a 0-d numpy array has __len__ but no length
            length = len(obj)
        except TypeError:
            length = "?"
        raise DataError(
            f"{source} does not have the MultiEMO/DialogueRNN layout (a 9- or 10-tuple); got "
            f"{type(obj).__name__} of length {length}"
        )
    tup = tuple(obj[:9])
    for i in (1, 2):
        if not isinstance(tup[i], dict):
            raise DataError(
                f"{source}: field {i} ({_TUPLE_FIELDS[i]}) should be a dict dialogue id -> list, "
                f"got {type(tup[i]).__name__}"
            )
    if tup[6] is not None and not isinstance(tup[6], dict):
        raise DataError(
            f"{source}: field 6 (videoSentence) should be a dict dialogue id -> sentences, "
            f"got {type(tup[6]).__name__}"
        )
    speakers, labels = tup[1], tup[2]
    for i in (7, 8):
        ids = tup[i]
        if not isinstance(ids, (set, frozenset, list, tuple)) or not all(
            isinstance(v, _ID_TYPES) for v in ids
        ):
            raise DataError(
                f"{source}: field {i} ({_TUPLE_FIELDS[i]}) should be a set or list of dialogue ids, "
                f"got {type(ids).__name__}"
            )
        for vid in ids:
            if vid not in labels or vid not in speakers:
                raise DataError(
                    f"{source}: dialogue {vid!r} of {_TUPLE_FIELDS[i]} has no "
                    f"{'labels' if vid not in labels else 'speakers'}"
                )
            lab = labels[vid]
            if not isinstance(lab, (list, tuple, np.ndarray)) or not len(lab):
                raise DataError(
                    f"{source}: labels of dialogue {vid!r} should be a non-empty list of class "
                    f"indices, got {type(lab).__name__}{' (empty)' if hasattr(lab, '__len__') else ''}"
                )
            if not isinstance(speakers[vid], (list, tuple, np.ndarray)) or len(speakers[vid]) != len(lab):
                raise DataError(
                    f"{source}: dialogue {vid!r} has {len(lab)} labels but speakers "
                    f"{type(speakers[vid]).__name__} of length "
                    f"{len(speakers[vid]) if hasattr(speakers[vid], '__len__') else '?'}"
                )
    return tup


def _speaker_names(raw) -> list[str]:
    out = []
    for s in raw:
        if isinstance(s, (str, bytes)):
            out.append(s.decode("latin1") if isinstance(s, bytes) else s)
        else:  # one-hot speaker slot (MELD)
            out.append(f"speaker{int(np.argmax(np.asarray(s)))}")
    return out


def _label_names(dataset: str) -> list[str]:
    return list(IEMOCAP_LABELS if dataset == "iemocap" else MELD_LABELS)


def _sort_ids(ids) -> list:
    ids = list(ids)
    try:
        return sorted(ids)
    except TypeError:
        return sorted(ids, key=str)


def _transcripts(dataset: str, data_dir):
    if data_dir is None or not real.is_available(dataset, data_dir):
        return None
    try:
        return real.load_transcripts(dataset, data_dir)
    except DataError:
        return None


def _build(
    dataset: str,
    tup: tuple,
    features: dict[str, dict],
    source: str,
    data_dir=None,
    valid_ids=None,
    valid_fraction: float = 0.1,
    seed: int = 0,
    meta_extra: dict | None = None,
) -> ConversationSet:
    _ids, speakers, labels, _t, _a, _v, sentences, train_vid, test_vid = tup
    train_vid, test_vid = _sort_ids(train_vid), _sort_ids(test_vid)
    if not train_vid or not test_vid:
        raise DataError(f"{source}: empty train or test id list")
    transcripts = _transcripts(dataset, data_dir)
    by_id = {d.dialogue_id: d for d in transcripts.dialogues()} if transcripts else {}

    if valid_ids is not None:
        valid = {str(v) for v in valid_ids}
        how = "given"
    elif transcripts is not None and {d.dialogue_id for d in transcripts.splits["valid"]} <= {
        str(v) for v in train_vid
    }:
        valid = {d.dialogue_id for d in transcripts.splits["valid"]}
        how = "cosmic"
    else:
        rng = np.random.default_rng(seed)
        k = max(1, int(round(valid_fraction * len(train_vid))))
        valid = {str(train_vid[i]) for i in rng.permutation(len(train_vid))[:k]}
        how = f"random {valid_fraction:g} of train (seed {seed})"

    def dialogue(vid) -> Dialogue:
        did = str(vid)
        try:
            lab = np.asarray(labels[vid], dtype=np.int64)
            spk = _speaker_names(speakers[vid])
            text = [str(s) for s in sentences[vid]] if sentences is not None and vid in sentences else None
            feats = {m: np.asarray(f[vid], dtype=np.float32) for m, f in features.items()}
        except KeyError as e:
            raise DataError(f"{source}: dialogue {did} is missing from one of the files ({e})") from e
        except (TypeError, ValueError, IndexError) as e:  # ragged arrays, labels that are not integers ...
            if isinstance(e, DataError):
                raise
            raise DataError(
                f"{source}: dialogue {did} is malformed (expected integer labels, one speaker and "
                f"one [dim] feature row per utterance): {type(e).__name__}: {e}"
            ) from e
        t = by_id.get(did)
        if t is not None and len(t) == len(lab) and np.array_equal(t.labels, lab):
            spk, text = list(t.speakers), list(t.text)  # clean names and text from the metadata
        if text is not None and len(text) != len(lab):
            text = None
        return Dialogue(did, spk, lab, feats, text)

    splits = {
        "train": [dialogue(v) for v in train_vid if str(v) not in valid],
        "valid": [dialogue(v) for v in train_vid if str(v) in valid],
        "test": [dialogue(v) for v in test_vid],
    }
    if not splits["valid"]:
        raise DataError(f"{source}: the validation ids match no training dialogue")
    meta = {"source": source, "valid_split": how}
    meta.update(meta_extra or {})
    desc = f"{dataset.upper()} with {'/'.join(features)} features from {source}; valid split: {how}."
    return validate_dataset(
        ConversationSet(dataset, _label_names(dataset), list(features), splits, desc, meta), source
    )


def load_multiemo(
    dataset: str,
    root=None,
    data_dir=None,
    valid_ids=None,
    valid_fraction: float = 0.1,
    seed: int = 0,
    allow_unsafe: bool | None = None,
) -> ConversationSet:
    """MultiEMO's IEMOCAP or MELD features as a `ConversationSet` (modalities text, audio, visual).

    root: folder with Speakers.pkl and Text/Audio/VisualFeatures.pkl (default
    `multiemo_dir(dataset, data_dir)`). data_dir: where to look for the COSMIC metadata that gives
    the validation split and clean MELD names/text (default: the data directory; pass False to
    ignore it). allow_unsafe: let the pickles name code objects (`safe_pickle.unsafe_load_allowed`).
    """
    dataset = _dataset(dataset)
    if data_dir is None:
        data_dir = default_data_dir()
    elif data_dir is False:
        data_dir = None
    root = Path(root) if root is not None else multiemo_dir(dataset, data_dir)
    missing = [f for f in ["Speakers.pkl", *MULTIEMO_FILES.values()] if not (root / f).is_file()]
    if missing:
        note = missing_dir_note(Path(data_dir).expanduser()) if data_dir else ""
        raise DataError(
            f"{note}MultiEMO {dataset} files not found in {root} (missing: {', '.join(missing)}). Get "
            f"them with `python -m aofl data download {dataset}-multiemo` or set AOFL_DATA_DIR."
        )
    tup = read_speakers_tuple(root / "Speakers.pkl", allow_unsafe)
    feats = {}
    for m, fname in MULTIEMO_FILES.items():
        obj = _load(root / fname, allow_unsafe)
        if not isinstance(obj, dict):
            raise DataError(f"{root / fname}: expected a dict dialogue id -> array, got {type(obj).__name__}")
        feats[m] = obj
    return _build(
        dataset,
        tup,
        feats,
        f"MultiEMO pickles in {root}",
        data_dir,
        valid_ids,
        valid_fraction,
        seed,
        {"root": str(root)},
    )


def load_dialoguernn(
    path,
    dataset: str = "iemocap",
    data_dir=None,
    valid_ids=None,
    valid_fraction: float = 0.1,
    seed: int = 0,
    allow_unsafe: bool | None = None,
) -> ConversationSet:
    """DialogueRNN's IEMOCAP_features_raw.pkl layout (9-tuple with videoText/videoAudio/videoVisual inside).

    Also reads MM-DFN's MELD_features_raw1.pkl (10-tuple) with dataset="meld".
    """
    dataset = _dataset(dataset)
    path = Path(path)
    if data_dir is False:
        data_dir = None
    elif data_dir is None:
        data_dir = default_data_dir()
    tup = read_speakers_tuple(path, allow_unsafe)
    feats = {"text": tup[3], "audio": tup[4], "visual": tup[5]}
    for m, f in feats.items():
        if not isinstance(f, dict):
            raise DataError(
                f"{path}: video{m.capitalize()} should be a dict dialogue id -> features, "
                f"got {type(f).__name__}"
            )
    return _build(
        dataset,
        tup,
        feats,
        f"DialogueRNN pickle {path}",
        data_dir,
        valid_ids,
        valid_fraction,
        seed,
        {"path": str(path)},
    )
