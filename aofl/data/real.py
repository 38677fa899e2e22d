"""IEMOCAP and MELD: real transcripts, speakers, labels and splits (README.md, "Data").

Files are read from the data directory (`aofl.data.data_dir()`, i.e. $AOFL_DATA_DIR or
~/.cache/aofl/data), laid out as::

    iemocap/iemocap.pkl
    meld/meld.pkl
    meld/{train,dev,test}_sent_emo.csv

(`python -m aofl data download iemocap|meld` fetches them, pinned and verified.)

Identifiers
-----------
* IEMOCAP dialogue ids are the corpus ids, e.g. ``'Ses02F_script01_3'``; speakers are the raw
  ``'M'`` / ``'F'`` of each turn.
* MELD dialogue ids are the COSMIC/DialogueRNN integer ids as strings: train ``'0'..'1038'``
  (``'60'`` is absent), dev ``'1039'..'1152'``, test ``'1153'..'1432'``. This numbering is the
  one the MultiEMO / MM-DFN feature pickles use too, so text views and MultiEMO features share
  ids. ``ConversationSet.meta["csv_dialogue"]`` maps each id to its CSV name, e.g.
  ``'1039' -> 'dev_0'`` (the clip ``dev/dia0_utt*.mp4`` of the MELD release). Speakers are the
  names from the CSVs; the text is the clean UTF-8 text of the CSVs, never the pickle's text
  (which has cp1252 artefacts such as '\\x92').
* Utterance ids are ``<dialogue id>#<position>`` (`Dialogue.utterance_ids`).

Splits are always named ``train``, ``valid``, ``test`` (MELD's ``dev`` is ``valid``).

Modalities
----------
`load(name)` (``features="text"``, the default) gives the text-derived views computed by
`aofl.data.textviews` (``sentence``, ``lexicon``, ``tfidf``; standardised with train-split
statistics). They are views of the transcript, not audio or video.
`load(name, features="multiemo")` instead reads MultiEMO's feature pickles from
``<data dir>/multiemo/<IEMOCAP|MELD>/`` (modalities ``text``, ``audio``, ``visual``) when they are
present (`python -m aofl data download iemocap-multiemo`).
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import AOFLError
from ..io.safe_pickle import UnsafePickleError, safe_load
from .conversation import DataError
from .paths import data_dir as default_data_dir

__all__ = [
    "IEMOCAP_LABELS",
    "MELD_LABELS",
    "EXPECTED_COUNTS",
    "TEXT_VIEWS",
    "DEFAULT_VIEWS",
    "SPLITS",
    "Transcript",
    "Transcripts",
    "is_available",
    "required_files",
    "load_transcripts",
    "missing_files_message",
]

IEMOCAP_LABELS = ["happy", "sad", "neutral", "angry", "excited", "frustrated"]
MELD_LABELS = ["neutral", "surprise", "fear", "sadness", "joy", "disgust", "anger"]
MELD_SENTIMENTS = ["neutral", "positive", "negative"]
LABEL_NAMES = {"iemocap": IEMOCAP_LABELS, "meld": MELD_LABELS}
SPLITS = ("train", "valid", "test")
TEXT_VIEWS = ("sentence", "lexicon", "tfidf", "tuned")
DEFAULT_VIEWS = ("sentence", "lexicon", "tfidf")  # `tuned` is opt-in: preparing it fine-tunes an encoder

# split -> (dialogues, utterances), as documented in shared/data/MANIFEST.md
EXPECTED_COUNTS = {
    "iemocap": {"train": (108, 5163), "valid": (12, 647), "test": (31, 1623)},
    "meld": {"train": (1038, 9989), "valid": (114, 1109), "test": (280, 2610)},
}

_FILES = {
    "iemocap": ["iemocap/iemocap.pkl"],
    "meld": ["meld/meld.pkl", "meld/train_sent_emo.csv", "meld/dev_sent_emo.csv", "meld/test_sent_emo.csv"],
}

DESCRIPTIONS = {
    "iemocap": "IEMOCAP (real transcripts, speakers, labels and the standard COSMIC splits); "
    "modalities are views of the text.",
    "meld": "MELD (real transcripts from the Friends series, speaker names, labels and the official "
    "train/dev/test splits); modalities are views of the text.",
}


@dataclass
class Transcript:
    """One dialogue without features."""

    dialogue_id: str
    speakers: list[str]
    labels: np.ndarray  # [n] int64
    text: list[str]
    extras: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def utterance_ids(self) -> list[str]:
        return [f"{self.dialogue_id}#{i}" for i in range(len(self))]


@dataclass
class Transcripts:
    """The metadata of a real dataset: splits -> dialogues, no features (fast to load)."""

    name: str
    label_names: list[str]
    splits: dict[str, list[Transcript]]
    files: list[Path]
    meta: dict = field(default_factory=dict)

    def dialogues(self):
        """All dialogues in canonical order: train, valid, test."""
        for split in SPLITS:
            yield from self.splits[split]

    def num_utterances(self, split: str | None = None) -> int:
        if split is None:
            return sum(len(d) for d in self.dialogues())
        return sum(len(d) for d in self.splits[split])

    def counts(self) -> dict[str, tuple[int, int]]:
        return {s: (len(ds), sum(len(d) for d in ds)) for s, ds in self.splits.items()}

    def split_of_rows(self) -> np.ndarray:
        """Split name of every utterance row, in canonical order."""
        return np.array([s for s in SPLITS for d in self.splits[s] for _ in range(len(d))])


def _check_name(name: str) -> str:
    if name not in _FILES:
        raise DataError(f"unknown real dataset {name!r}; choose one of {', '.join(_FILES)}")
    return name


def _root(data_dir) -> Path:
    if data_dir is None:
        return default_data_dir()
    return Path(data_dir).expanduser()


def required_files(name: str, data_dir=None) -> list[Path]:
    root = _root(data_dir)
    return [root / rel for rel in _FILES[_check_name(name)]]


def is_available(name: str, data_dir=None) -> bool:
    """True when all of the dataset's files are in the data directory (their content is not checked)."""
    try:
        return all(p.is_file() for p in required_files(name, data_dir))
    except DataError:
        return False


def missing_dir_note(root: Path) -> str:
    """'' when the data directory exists, else a sentence saying it does not (and who set it)."""
    if root.is_dir():
        return ""
    env = os.environ.get("AOFL_DATA_DIR")
    who = f" (AOFL_DATA_DIR is set to {env!r})" if env and Path(env).expanduser() == root else ""
    return f"The data directory {root} does not exist{who}. "


def missing_files_message(name: str, data_dir=None) -> str:
    root = _root(data_dir)
    missing = [str(p) for p in required_files(name, data_dir) if not p.is_file()]
    return (
        f"{missing_dir_note(root)}{name} files not found in the data directory {root} (missing: "
        f"{', '.join(missing)}). "
        f"Get them with `python -m aofl data download {name}`, or set AOFL_DATA_DIR to a folder "
        f"that has them (layout: {', '.join(_FILES[name])})."
    )


def _validate(t: Transcripts) -> None:
    got = t.counts()
    want = EXPECTED_COUNTS[t.name]
    if got != want:
        raise DataError(
            f"{t.name} files in {t.files[0].parent.parent} do not match the documented release: "
            f"got (dialogues, utterances) per split {got}, expected {want}. Re-download them with "
            f"`python -m aofl data download {t.name}`."
        )


def _load_pickle(path: Path, n_items: int, allow_unsafe: bool | None = None):
    try:
        obj = safe_load(path, encoding="latin1", allow_unsafe=allow_unsafe)
    except UnsafePickleError as e:
        raise DataError(f"refusing to load {path}: {e}") from e
    except (AOFLError, OSError) as e:  # CorruptPickleError names the file and what is wrong
        raise DataError(f"cannot read {path}: {e}") from e
    if not isinstance(obj, (list, tuple)) or len(obj) != n_items:
        raise DataError(
            f"{path} does not have the expected layout (a list of {n_items}); "
            f"got {type(obj).__name__} of length {len(obj) if hasattr(obj, '__len__') else '?'}"
        )
    return obj


def _load_iemocap(root: Path, allow_unsafe: bool | None = None) -> Transcripts:
    path = root / "iemocap" / "iemocap.pkl"
    speakers, labels, sentences, train, test, valid = _load_pickle(path, 6, allow_unsafe)
    splits = {}
    for split, ids in (("train", train), ("valid", valid), ("test", test)):
        out = []
        for vid in _id_list(ids, path, split):
            vid_s = str(vid)
            try:
                out.append(
                    Transcript(
                        vid_s,
                        [str(s) for s in speakers[vid]],
                        np.asarray(labels[vid], dtype=np.int64),
                        [str(x) for x in sentences[vid]],
                    )
                )
            except KeyError as e:
                raise DataError(f"{path}: dialogue {vid_s} listed in split {split} has no {e}") from e
            except (TypeError, ValueError, IndexError) as e:  # wrong types inside the layout
                raise DataError(
                    f"{path}: dialogue {vid_s} of split {split} is malformed: expected lists of "
                    f"speakers, integer labels and sentences; {type(e).__name__}: {e}"
                ) from e
            d = out[-1]
            if not (len(d.speakers) == len(d.labels) == len(d.text)):
                raise DataError(f"{path}: dialogue {vid_s} has inconsistent lengths")
        splits[split] = out
    t = Transcripts("iemocap", list(IEMOCAP_LABELS), splits, [path])
    _validate(t)
    return t


def _id_list(ids, path: Path, split: str) -> list:
    if not isinstance(ids, (list, tuple, set, frozenset)):
        raise DataError(f"{path}: the {split} ids should be a list, got {type(ids).__name__}")
    return list(ids)


def _read_meld_csv(path: Path) -> dict[int, list[dict]]:
    """CSV rows grouped by Dialogue_ID, each dialogue sorted by Utterance_ID."""
    out: dict[int, list[dict]] = {}
    if path.stat().st_size == 0:
        raise DataError(f"{path} is empty (0 bytes): re-download it with `python -m aofl data download meld`")
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        try:
            need = {"Utterance", "Speaker", "Emotion", "Sentiment", "Dialogue_ID", "Utterance_ID"}
            if not need <= set(reader.fieldnames or []):
                raise DataError(f"{path}: missing columns {sorted(need - set(reader.fieldnames or []))}")
            for row in reader:
                out.setdefault(int(row["Dialogue_ID"]), []).append((int(row["Utterance_ID"]), row))
        except (ValueError, TypeError, csv.Error, UnicodeDecodeError) as e:  # a truncated or damaged row
            raise DataError(
                f"{path}, line {reader.line_num}: expected integer Dialogue_ID and Utterance_ID "
                f"and all columns ({type(e).__name__}: {e}); truncated or corrupt? Re-download "
                f"it with `python -m aofl data download meld`"
            ) from e
    return {k: [row for _, row in sorted(rows, key=lambda r: r[0])] for k, rows in out.items()}


def _load_meld(root: Path, allow_unsafe: bool | None = None) -> Transcripts:
    pkl = root / "meld" / "meld.pkl"
    speakers_1h, emotions, sentiments, _sentences, train, test, dev = _load_pickle(pkl, 7, allow_unsafe)
    try:
        return _meld_transcripts(root, pkl, emotions, sentiments, train, test, dev)
    except (
        KeyError,
        TypeError,
        ValueError,
        IndexError,
        AttributeError,
    ) as e:  # wrong types inside the layout
        if isinstance(e, DataError):
            raise
        raise DataError(
            f"{pkl} or its CSVs do not have the MELD layout (dicts of per-dialogue label lists, "
            f"integer ids, known emotions): {type(e).__name__}: {e}"
        ) from e


def _meld_transcripts(root: Path, pkl: Path, emotions, sentiments, train, test, dev) -> Transcripts:
    splits, csv_names = {}, {}
    files = [pkl]
    for split, csv_split, ids in (("train", "train", train), ("valid", "dev", dev), ("test", "test", test)):
        path = root / "meld" / f"{csv_split}_sent_emo.csv"
        files.append(path)
        rows_by_dia = _read_meld_csv(path)
        csv_ids = sorted(rows_by_dia)
        pkl_ids = sorted(int(v) for v in _id_list(ids, pkl, csv_split))
        if len(csv_ids) != len(pkl_ids):
            raise DataError(
                f"{path} has {len(csv_ids)} dialogues but {pkl} lists {len(pkl_ids)} for {csv_split}"
            )
        # train CSV ids equal the pickle ids; dev/test CSV ids restart at 0 and map in order
        out = []
        for pid, cid in zip(pkl_ids, csv_ids):
            rows = rows_by_dia[cid]
            labels = np.asarray(emotions[pid], dtype=np.int64)
            csv_labels = np.array(
                [MELD_LABELS.index(r["Emotion"].strip().lower()) for r in rows], dtype=np.int64
            )
            if len(rows) != len(labels) or not np.array_equal(labels, csv_labels):
                raise DataError(
                    f"MELD {csv_split} dialogue {cid} in {path} does not match dialogue {pid} of {pkl} "
                    f"({len(rows)} vs {len(labels)} utterances or different labels)"
                )
            sent = np.asarray(sentiments[pid], dtype=np.int64)
            out.append(
                Transcript(
                    str(pid),
                    [r["Speaker"].strip() for r in rows],
                    labels,
                    [r["Utterance"].strip() for r in rows],
                    {"sentiment": sent},
                )
            )
            csv_names[str(pid)] = f"{csv_split}_{cid}"
        splits[split] = out
    t = Transcripts(
        "meld",
        list(MELD_LABELS),
        splits,
        files,
        meta={"csv_dialogue": csv_names, "sentiment_names": list(MELD_SENTIMENTS)},
    )
    _validate(t)
    return t


def load_transcripts(name: str, data_dir=None, allow_unsafe: bool | None = None) -> Transcripts:
    """Transcripts, speakers, labels and splits of `name` (no features): fast, no optional deps.

    allow_unsafe: let the pickles name code objects (see `safe_pickle.unsafe_load_allowed`; warns).
    """
    _check_name(name)
    root = _root(data_dir)
    if not is_available(name, root):
        raise DataError(missing_files_message(name, root))
    return _load_iemocap(root, allow_unsafe) if name == "iemocap" else _load_meld(root, allow_unsafe)
