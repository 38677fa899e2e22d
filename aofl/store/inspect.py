"""What a checkpoint or data file is, read without trusting it: `describe_file(path)`.

Behind `python -m aofl inspect FILE` and the app's "Load a checkpoint file". Every format goes
through the loader aofl already uses for it, never a second one: `load_checkpoint` /
`load_foreign_state_dict` for weights, `safe_load(allow_numpy=True)` for pickles (numpy arrays
and plain data only), `np.load(allow_pickle=False)`, pandas for tables, `json` for JSON. A hostile
or broken file therefore raises `DescribeError` with a one-line reason; nothing in it is run.
Describing always passes `allow_unsafe=False`: even with $AOFL_ALLOW_UNSAFE_LOAD or
--allow-unsafe-load, looking at a file never unpickles it without restrictions.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np

from ..data import real
from ..data.multiemo import MULTIEMO_FILES
from ..data.real import IEMOCAP_LABELS, MELD_LABELS
from ..data.textviews import VIEW_VERSIONS
from ..errors import AOFLError
from ..io.file_checks import load_npz
from ..io.safe_pickle import UnsafePickleError, safe_load
from ..table import table_modalities
from .checkpoint import (
    CHECKPOINT_FILENAME,
    UnsafeCheckpointError,
    _clean_key,
    load_checkpoint,
    load_foreign_state_dict,
)
from .registry import read_manifest

__all__ = ["DescribeError", "describe_file", "format_description", "KINDS"]

# kind -> what it is, in words
KINDS = {
    "aofl-checkpoint": "AO-FL checkpoint (.safetensors with AO-FL metadata)",
    "foreign-safetensors": "safetensors file without AO-FL metadata (another project's weights)",
    "foreign-state-dict": "PyTorch state dict (.pt/.pth, tensors only)",
    "dialogue-tuple-pickle": "MultiEMO Speakers.pkl / DialogueRNN features pickle (9- or 10-tuple)",
    "feature-pickle": "MultiEMO features pickle (dialogue id -> [utterances, dim] array)",
    "cosmic-iemocap-pickle": "COSMIC IEMOCAP metadata pickle (speakers, labels, sentences, splits)",
    "cosmic-meld-pickle": "COSMIC MELD metadata pickle (speakers, emotions, sentiments, sentences, splits)",
    "pickle": "pickle of plain data (layout not recognised)",
    "meld-csv": "MELD utterance CSV (*_sent_emo.csv)",
    "emotion-csv": "utterance CSV with dialogue and emotion columns (IEMOCAP/MELD-style)",
    "inference-table": "per-utterance inference table (python -m aofl infer)",
    "table": "table (layout not recognised)",
    "textview-cache": "text-view cache (.npz of aofl.data.textviews)",
    "inference-cache": "app inference cache (table.parquet + arrays.npz + meta.json)",
    "embedding-cache": "embedding cache (.npz of aofl.embed)",
    "arrays": "numpy arrays (.npz/.npy, layout not recognised)",
    "manifest": "checkpoint manifest (MANIFEST.json)",
    "json": "JSON file (layout not recognised)",
    "data-directory": "data directory (IEMOCAP / MELD files)",
    "multiemo-directory": "MultiEMO features directory (Speakers.pkl + Text/Audio/VisualFeatures.pkl)",
}
_TORCH_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt", ".tar")
_PICKLE_SUFFIXES = (".pkl", ".pickle", ".p")
_MAX_LISTED = 20  # tensors / arrays listed by name; the rest are counted


class DescribeError(AOFLError, ValueError):
    """A file that cannot be described: missing, empty, corrupt or refused as unsafe."""


def _one_line(text: str, limit: int = 500) -> str:
    text = " ".join(str(text).split())  # torch and pandas errors span lines; the CLI promises one
    return text if len(text) <= limit else text[: limit - 3] + "..."


def describe_file(path) -> dict:
    """A JSON-able description: path, kind, what (KINDS[kind]), bytes, and what the kind has
    (metadata, modalities and dims, label names, tensors, per-split counts). Raises DescribeError."""
    p = Path(path).expanduser()
    if not p.exists():
        raise DescribeError(f"no file or directory at {p}: check the path")
    if not (p.is_file() or p.is_dir()):  # a FIFO or device would block or never end
        raise DescribeError(f"{p} is not a regular file or directory")
    if p.is_file() and p.stat().st_size == 0:
        raise DescribeError(f"{p} is empty (0 bytes): an interrupted download or copy?")
    try:
        info = _describe_dir(p) if p.is_dir() else _describe(p)
    except (
        UnsafePickleError,
        UnsafeCheckpointError,
    ) as e:  # their hint names the opt-in: it does not apply here
        raise DescribeError(
            _one_line(f"{e} (describing a file never runs its code, even with that opt-in)")
        ) from e
    except AOFLError as e:
        raise DescribeError(_one_line(e)) from e
    except Exception as e:
        raise DescribeError(_one_line(f"cannot read {p} ({type(e).__name__}: {e})")) from e
    out = {"path": str(p), "kind": info["kind"], "what": KINDS[info["kind"]]}
    if p.is_file():
        out["bytes"] = p.stat().st_size
    out.update((k, v) for k, v in info.items() if k != "kind")
    return out


def _describe(p: Path) -> dict:
    suffix = p.suffix.lower()
    if suffix == ".safetensors":
        return _safetensors(p)
    if suffix in _TORCH_SUFFIXES:
        return _state_dict(p)
    if suffix in _PICKLE_SUFFIXES:
        return _pickle(p)
    if suffix in (".npz", ".npy"):
        return _arrays(p)
    if suffix in (".csv", ".tsv"):
        return _csv(p)
    if suffix == ".parquet":
        import pandas as pd

        return _table(pd.read_parquet(p), p)
    if suffix == ".json":
        return _json(p)
    return _sniffed(p)


def _sniffed(p: Path) -> dict:
    """A file whose name does not say what it is (an upload, a renamed file): look at its first bytes."""
    head = _head(p)
    if head.startswith(b"PK\x03\x04"):
        import zipfile

        with zipfile.ZipFile(p) as z:
            torch_zip = any(n.endswith("data.pkl") for n in z.namelist())
        return _state_dict(p) if torch_zip else _arrays(p)
    if head.startswith(b"\x80"):
        return _pickle(p)
    if head.startswith(b"\x93NUMPY"):
        return _arrays(p)
    if len(head) > 8 and head[8:9] == b"{" and int.from_bytes(head[:8], "little") < p.stat().st_size:
        return _safetensors(p)
    if head.lstrip()[:1] in (b"{", b"["):
        return _json(p)
    raise DescribeError(
        f"{p}: unknown file type (suffix {p.suffix or 'none'!r}); expected a checkpoint "
        f"(.safetensors, .pt), a pickle, .npz, .csv, .parquet or .json"
    )


# ------------------------------------------------------------------------------------- weights


def _tensor_summary(tensors: dict) -> dict:
    names = sorted(tensors)
    return {
        "tensors": len(names),
        "parameters": int(sum(t.numel() for t in tensors.values())),
        "dtypes": dict(Counter(str(t.dtype).replace("torch.", "") for t in tensors.values())),
        "top_level_modules": sorted({n.split(".")[0] for n in names}),
        "shapes": {n: list(tensors[n].shape) for n in names[:_MAX_LISTED]},
        "shapes_not_listed": max(0, len(names) - _MAX_LISTED),
    }


def _head(p: Path, n: int = 16) -> bytes:
    with open(p, "rb") as f:
        return f.read(n)


def _safetensors(p: Path) -> dict:
    from safetensors import safe_open

    if _head(p).startswith(b"\x80"):  # say what it is rather than "header too large"
        raise DescribeError(
            f"{p} is named .safetensors but holds a pickle (a renamed or disguised file); refused"
        )
    tensors = load_foreign_state_dict(p, allow_unsafe=False)  # refuses unreadable or truncated files
    with safe_open(str(p), framework="pt") as f:
        header = f.metadata() or {}
    if "aofl" in header:
        return _aofl_checkpoint(p)
    return {"kind": "foreign-safetensors", "header_metadata_keys": sorted(header), **_tensor_summary(tensors)}


def _aofl_checkpoint(p: Path) -> dict:
    model, meta = load_checkpoint(p)  # the full check: metadata, config, every tensor's name and shape
    cfg = meta.get("config") or {}
    data = meta.get("data") or {}
    metrics = meta.get("metrics") or {}
    test, valid = metrics.get("test") or {}, metrics.get("valid") or {}
    return {
        "kind": "aofl-checkpoint",
        "variant": meta.get("variant", cfg.get("variant")),
        "dataset": data.get("name"),
        "seed": meta.get("seed"),
        "data_fingerprint": data.get("fingerprint"),
        "modalities": dict(cfg.get("modality_dims") or meta.get("modality_dims") or {}),
        "label_names": list(meta.get("label_names") or cfg.get("label_names") or []),
        "num_classes": cfg.get("num_classes"),
        "metrics": {
            "test": {k: test[k] for k in ("weighted_f1", "accuracy", "macro_f1") if k in test},
            "valid": {k: valid[k] for k in ("weighted_f1", "accuracy") if k in valid},
        },
        "best_epoch": meta.get("best_epoch"),
        "architecture": {k: cfg.get(k) for k in ("width", "context", "fusion", "dropout")},
        "dtype": meta.get("dtype"),
        "command": meta.get("command"),
        "recipe": meta.get("recipe"),  # which training recipe (CV-chosen, defaults, a file) and what it set
        "package_version": meta.get("package_version"),
        "sha256": meta.get("sha256"),
        **{k: v for k, v in _tensor_summary(model.state_dict()).items() if k in ("tensors", "parameters")},
    }


def _state_dict(p: Path) -> dict:
    if not _head(p).startswith(
        (b"PK\x03\x04", b"\x80")
    ):  # torch.save writes a zip (or, before 1.6, a pickle)
        raise DescribeError(
            f"{p} is not a PyTorch checkpoint: neither a zip archive nor a pickle "
            f"(corrupt, or another format with a .pt name?)"
        )
    state = load_foreign_state_dict(p, allow_unsafe=False)
    # names as loading sees them: DataParallel/DDP's `module.` and torch.compile's `_orig_mod.` stripped
    clean = {_clean_key(k): v for k, v in state.items()}
    out = {"kind": "foreign-state-dict", **_tensor_summary(clean if len(clean) == len(state) else state)}
    stripped = sorted({k[: len(k) - len(_clean_key(k))] for k in state if _clean_key(k) != k})
    if stripped:
        out["prefixes_stripped"] = stripped
    return out


# ------------------------------------------------------------------------------------- pickles


def _pickle(p: Path) -> dict:
    obj = safe_load(p, allow_numpy=True, encoding="latin1", allow_unsafe=False)
    try:
        return _pickle_layout(obj, p)
    except (TypeError, KeyError, AttributeError, ValueError, IndexError):
        pass  # plain data in a shape none of the research layouts has
    return {
        "kind": "pickle",
        "top_level": type(obj).__name__,
        "length": len(obj) if hasattr(obj, "__len__") else None,
    }


def _is_features(d) -> bool:
    return isinstance(d, dict) and bool(d) and all(np.ndim(v) == 2 for v in d.values())


def _dim(d: dict) -> int:
    return int(np.shape(next(iter(d.values())))[1])


def _split_counts(labels: dict, ids) -> dict:
    ids = list(ids)
    known = [v for v in ids if v in labels]
    out = {"dialogues": len(ids), "utterances": int(sum(len(labels[v]) for v in known))}
    if len(known) < len(ids):
        out["ids_without_labels"] = len(ids) - len(known)
    return out


def _pickle_layout(obj, p: Path) -> dict:
    if _is_features(obj):
        modality = {"TextFeatures.pkl": "text", "AudioFeatures.pkl": "audio", "VisualFeatures.pkl": "visual"}
        return {
            "kind": "feature-pickle",
            "modality": modality.get(p.name),
            "dim": _dim(obj),
            "dialogues": len(obj),
            "utterances": int(sum(len(v) for v in obj.values())),
        }
    if isinstance(obj, (tuple, list)) and len(obj) in (9, 10) and isinstance(obj[2], dict):
        speakers, labels = obj[1], obj[2]
        first = next(iter(speakers.values()))[0]
        dataset = "iemocap" if isinstance(first, (str, bytes)) else "meld"  # MELD: one-hot speaker slots
        classes = sorted({int(x) for v in labels.values() for x in v})
        feats = {
            m: _dim(obj[i]) for i, m in ((3, "text"), (4, "audio"), (5, "visual")) if _is_features(obj[i])
        }
        return {
            "kind": "dialogue-tuple-pickle",
            "dataset_guess": dataset,
            "tuple_length": len(obj),
            "label_names": list(IEMOCAP_LABELS if dataset == "iemocap" else MELD_LABELS),
            "label_indices_seen": classes,
            "modalities": feats,
            "splits": {
                "train (incl. valid)": _split_counts(labels, obj[7]),
                "test": _split_counts(labels, obj[8]),
            },
        }
    if isinstance(obj, (tuple, list)) and len(obj) == 6 and isinstance(obj[1], dict):
        labels = obj[1]
        return {
            "kind": "cosmic-iemocap-pickle",
            "label_names": list(IEMOCAP_LABELS),
            "splits": {
                s: _split_counts(labels, obj[i]) for s, i in (("train", 3), ("valid", 5), ("test", 4))
            },
        }
    if isinstance(obj, (tuple, list)) and len(obj) == 7 and isinstance(obj[1], dict):
        labels = obj[1]
        return {
            "kind": "cosmic-meld-pickle",
            "label_names": list(MELD_LABELS),
            "splits": {
                s: _split_counts(labels, obj[i]) for s, i in (("train", 4), ("valid", 6), ("test", 5))
            },
        }
    raise ValueError("no known layout")


# ------------------------------------------------------------------------------------- arrays


def _arrays(p: Path) -> dict:
    loaded = np.load(p, allow_pickle=False)  # object arrays (pickles inside) raise ValueError
    if isinstance(loaded, np.ndarray):  # .npy: one array
        arrays = {"array": loaded}
    else:
        with loaded as z:
            arrays = {k: z[k] for k in z.files}
    keys = set(arrays)
    if {"X", "utterance_ids", "version"} <= keys:
        return _textview_cache(arrays)
    if "probabilities" in keys:
        return _inference_arrays(arrays)
    if keys == {"coords"}:
        return {
            "kind": "embedding-cache",
            "points": int(arrays["coords"].shape[0]),
            "components": int(arrays["coords"].shape[1]),
        }
    names = sorted(keys)
    return {
        "kind": "arrays",
        "arrays": len(names),
        "shapes": {
            k: {"shape": list(arrays[k].shape), "dtype": str(arrays[k].dtype)} for k in names[:_MAX_LISTED]
        },
    }


def _textview_cache(a: dict) -> dict:
    version = str(a["version"])
    view = next((v for v, ver in VIEW_VERSIONS.items() if ver.split("/")[0] == version.split("/")[0]), None)
    return {
        "kind": "textview-cache",
        "dataset": str(a["dataset"]) if "dataset" in a else None,
        "view": view,
        "version": version,
        "current_version": view is not None and VIEW_VERSIONS[view] == version,
        "utterances": int(a["X"].shape[0]),
        "dim": int(a["X"].shape[1]) if a["X"].ndim == 2 else None,
        "ids_match_rows": len(a["utterance_ids"]) == len(a["X"]),
    }


def _inference_arrays(a: dict) -> dict:
    groups: dict[str, list[str]] = {}
    for k in a:
        if "/" in k:
            g, m = k.split("/", 1)
            groups.setdefault(g, []).append(m)
    probs = a["probabilities"]
    return {
        "kind": "inference-cache",
        "utterances": int(probs.shape[0]),
        "num_classes": int(probs.shape[1]) if probs.ndim == 2 else None,
        "feature_groups": {g: sorted(ms) for g, ms in sorted(groups.items())},
    }


# ------------------------------------------------------------------------------------- tables


def _csv(p: Path) -> dict:
    import pandas as pd

    df = pd.read_csv(p, sep="\t" if p.suffix.lower() == ".tsv" else ",")
    return _table(df, p)


def _table(df, p: Path) -> dict:
    cols = set(df.columns)
    base = {"rows": int(len(df)), "columns": [str(c) for c in df.columns][:40]}
    if {"Utterance", "Speaker", "Emotion", "Dialogue_ID", "Utterance_ID"} <= cols:
        emotions = df["Emotion"].astype(str).str.strip().str.lower()
        split = next((s for s in ("train", "dev", "test") if p.name.lower().startswith(s)), None)
        return {
            "kind": "meld-csv",
            "split_guess": split,
            "dialogues": int(df["Dialogue_ID"].nunique()),
            "utterances": int(len(df)),
            "label_names": list(MELD_LABELS),
            "label_counts": {k: int(v) for k, v in emotions.value_counts().items()},
            "unknown_labels": sorted(set(emotions) - set(MELD_LABELS)),
            "speakers": int(df["Speaker"].nunique()),
        }
    if {"utterance_id", "dialogue", "prediction"} <= cols:
        out = {
            "kind": "inference-table",
            "utterances": int(len(df)),
            "dialogues": int(df["dialogue"].nunique()),
            "modalities": sorted(table_modalities(df)),
            "label_names": sorted(map(str, set(df["label"].dropna()) | set(df["prediction"].dropna())))
            if "label" in cols
            else None,
        }
        if "correct" in cols:
            out["accuracy"] = round(float(df["correct"].mean()), 6)
        return out
    lower = {str(c).lower(): c for c in df.columns}
    dia = next((lower[c] for c in lower if "dialog" in c), None)
    emo = next((lower[c] for c in ("emotion", "label", "labels", "emotion_label") if c in lower), None)
    if dia is not None and emo is not None:
        return {
            "kind": "emotion-csv",
            "dialogues": int(df[dia].nunique()),
            "utterances": int(len(df)),
            "label_counts": {str(k): int(v) for k, v in df[emo].value_counts().items()},
            **base,
        }
    return {"kind": "table", **base}


# ------------------------------------------------------------------------------------- JSON, directories


def _json(p: Path) -> dict:
    if p.name == "MANIFEST.json":
        return _manifest(p.parent)
    raw = json.loads(p.read_text(encoding="utf-8"))
    if isinstance(raw, dict) and {"alpha_deg", "label_names", "modalities"} <= set(raw):
        return {
            "kind": "inference-cache",
            "label_names": raw["label_names"],
            "modalities": raw["modalities"],
            "alpha_deg": raw["alpha_deg"],
        }
    return {
        "kind": "json",
        "top_level": type(raw).__name__,
        "keys": sorted(map(str, raw))[:40] if isinstance(raw, dict) else None,
        "length": len(raw) if isinstance(raw, (list, dict)) else None,
    }


def _manifest(directory: Path) -> dict:
    entries = read_manifest(directory)  # raises RegistryError for bad JSON, missing fields, duplicates
    return {
        "kind": "manifest",
        "checkpoints": len(entries),
        "datasets": dict(Counter(e.dataset for e in entries)),
        "names": [e.name for e in entries],
        "missing_files": [e.name for e in entries if not e.path.exists()],
    }


def _describe_dir(p: Path) -> dict:
    if (p / CHECKPOINT_FILENAME).is_file():  # a training output directory
        return {**_describe(p / CHECKPOINT_FILENAME), "file": CHECKPOINT_FILENAME}
    if all((p / f).is_file() for f in ("table.parquet", "arrays.npz", "meta.json")):
        import pandas as pd

        info = {**_json(p / "meta.json"), **_inference_arrays_of(p / "arrays.npz")}
        info["rows"] = int(len(pd.read_parquet(p / "table.parquet")))
        return info
    if (p / "MANIFEST.json").is_file():
        return _manifest(p)
    if (p / "Speakers.pkl").is_file():
        return {
            **_pickle(p / "Speakers.pkl"),
            "kind": "multiemo-directory",
            "files_present": {m: (p / f).is_file() for m, f in MULTIEMO_FILES.items()},
        }
    found = {name: real.is_available(name, p) for name in ("iemocap", "meld")}
    if not any(found.values()):
        raise DescribeError(
            f"{p} is a directory without a checkpoint (model.safetensors), MANIFEST.json, "
            f"MultiEMO files or IEMOCAP/MELD data files; pass a file instead"
        )
    datasets = {}
    for name, ok in found.items():
        if not ok:
            datasets[name] = {"available": False}
            continue
        try:
            t = real.load_transcripts(name, p, allow_unsafe=False)
            datasets[name] = {
                "available": True,
                "label_names": list(t.label_names),
                "splits": {s: {"dialogues": d, "utterances": u} for s, (d, u) in t.counts().items()},
            }
        except AOFLError as e:  # one broken dataset does not hide the other
            datasets[name] = {"available": True, "problem": _one_line(e)}
    return {"kind": "data-directory", "datasets": datasets}


def _inference_arrays_of(path: Path) -> dict:
    return _inference_arrays(load_npz(path, DescribeError))


# ------------------------------------------------------------------------------------- text


def format_description(info: dict) -> str:
    """The description as indented `key: value` lines (what `inspect FILE` prints without --json)."""
    lines: list[str] = []

    def emit(key, value, indent):
        pad = "  " * indent
        if isinstance(value, dict) and value:
            lines.append(f"{pad}{key}:")
            for k, v in value.items():
                emit(k, v, indent + 1)
        elif isinstance(value, list):
            lines.append(f"{pad}{key}: {', '.join(map(str, value)) if value else '-'}")
        elif value not in (None, {}):
            lines.append(f"{pad}{key}: {value}")

    for k, v in info.items():
        emit(k, v, 0)
    return "\n".join(lines)
