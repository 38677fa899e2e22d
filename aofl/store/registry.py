"""The shipped checkpoints: `checkpoints/MANIFEST.json`, read and checked.

The manifest is a JSON list of entries (or `{"checkpoints": [...]}`), each with `name`,
`dataset` (synthetic | iemocap | meld), `variant`, `seed`, `file` (relative to the
checkpoint directory), `sha256`, `metrics` ({weighted_f1, accuracy}) and `command`.
The directory is `$AOFL_CHECKPOINT_DIR`, else the repository's `checkpoints/`. Without a
manifest, every `*.safetensors` under the directory is listed from its own metadata, so a
freshly trained checkpoint shows up without editing JSON.
"""

from __future__ import annotations

import functools
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from ..data import DataError, DatasetName
from ..errors import AOFLError, CheckpointError
from ..io.atomic import atomic_write_text
from ..io.hashing import file_sha256
from .checkpoint import read_metadata

__all__ = [
    "CheckpointEntry",
    "RegistryError",
    "checkpoint_dir",
    "checkpoint_dataset",
    "read_manifest",
    "list_checkpoints",
    "MANIFEST_NAME",
    "manifest_entry",
    "write_manifest",
]

MANIFEST_NAME = "MANIFEST.json"
_REQUIRED = ("name", "dataset", "file")


class RegistryError(AOFLError, ValueError):
    """A manifest that is missing, malformed or points at files that are not there."""


@dataclass(frozen=True)
class CheckpointEntry:
    name: str
    dataset: str
    variant: str
    seed: int
    path: Path
    sha256: str = ""
    metrics: dict = field(default_factory=dict, hash=False, compare=False)
    command: str = ""

    @property
    def label(self) -> str:
        """What a selectbox shows: name, variant, test weighted F1 when known."""
        wf1 = self.metrics.get("weighted_f1") if isinstance(self.metrics, dict) else None
        extra = f", WF1 {wf1:.3f}" if isinstance(wf1, (int, float)) else ""
        return f"{self.name} ({self.variant}{extra})"


def checkpoint_dir() -> Path:
    """$AOFL_CHECKPOINT_DIR, else `checkpoints/` next to the `aofl` package (the repository's)."""
    env = os.environ.get("AOFL_CHECKPOINT_DIR")
    if env:
        return Path(env).expanduser()
    return Path(__file__).resolve().parents[2] / "checkpoints"


def manifest_entry(directory, path, meta: dict, name: str | None = None, **extra) -> dict:
    """A MANIFEST.json entry of the checkpoint at `path` (under `directory`) with metadata `meta`:
    name (default DATASET-VARIANT-seedN), dataset, variant, seed, file, sha256, then `extra`
    (metrics, command, dtype, bytes, ... as the caller measured them), in that order."""
    directory, path = Path(directory), Path(path)
    dataset = checkpoint_dataset(meta)
    seed = meta.get("seed", 0)
    return {
        "name": name if name is not None else f"{dataset}-{meta['variant']}-seed{seed}",
        "dataset": dataset,
        "variant": meta["variant"],
        "seed": seed,
        "file": str(path.relative_to(directory)),
        "sha256": file_sha256(path),
        **extra,
    }


def write_manifest(directory, entries: list[dict]) -> Path:
    """Write DIRECTORY/MANIFEST.json (atomically: the app may be reading it)."""
    return atomic_write_text(Path(directory) / MANIFEST_NAME, json.dumps(entries, indent=2) + "\n")


def _entry_from_dict(d: dict, directory: Path, index: int) -> CheckpointEntry:
    if not isinstance(d, dict):
        raise RegistryError(f"{directory / MANIFEST_NAME}: entry {index} is not an object")
    missing = [k for k in _REQUIRED if not d.get(k)]
    if missing:
        raise RegistryError(
            f"{directory / MANIFEST_NAME}: entry {index} ({d.get('name', '?')}) lacks {missing}"
        )
    metrics = d.get("metrics") or {}
    if isinstance(metrics.get("test"), dict):  # tolerate the train command's nested layout
        metrics = metrics["test"]
    return CheckpointEntry(
        name=str(d["name"]),
        dataset=str(d["dataset"]),
        variant=str(d.get("variant", "?")),
        seed=int(d.get("seed", 0)),
        path=(directory / d["file"]).resolve(),
        sha256=str(d.get("sha256", "")),
        metrics=dict(metrics),
        command=str(d.get("command", "")),
    )


def checkpoint_dataset(meta: dict) -> str:
    """The dataset name a checkpoint runs on: its data's name, with its text views when they are not
    the default ones (`iemocap+sentence+lexicon+tfidf+tuned`), as the manifest and the app name it."""
    data = meta.get("data") if isinstance(meta.get("data"), dict) else {}
    name, views = str(data.get("name", "?")), data.get("views")
    if not isinstance(views, list) or not views:
        return name
    try:
        return str(DatasetName.from_parts(name, views))
    except DataError:  # views this version does not know (or a synthetic run): the plain name
        return name


def _scan(directory: Path) -> list[CheckpointEntry]:
    """Entries from the metadata of every .safetensors file (no manifest)."""
    out = []
    for p in sorted(directory.rglob("*.safetensors")):
        try:
            meta = read_metadata(p)
        except CheckpointError:
            continue
        rel = p.relative_to(directory)
        name = str(rel.parent) if rel.name == "model.safetensors" and str(rel.parent) != "." else rel.stem
        test = ((meta.get("metrics") or {}).get("test")) or {}
        out.append(
            CheckpointEntry(
                name=name,
                dataset=checkpoint_dataset(meta),
                variant=meta.get("variant", meta.get("config", {}).get("variant", "?")),
                seed=int(meta.get("seed", 0)),
                path=p.resolve(),
                metrics={k: test[k] for k in ("weighted_f1", "accuracy") if k in test},
                command=meta.get("command", ""),
            )
        )
    return out


def read_manifest(directory: Path | str | None = None) -> list[CheckpointEntry]:
    """All entries of the manifest (or of a scan when there is none). Raises RegistryError."""
    directory = Path(directory) if directory is not None else checkpoint_dir()
    if not directory.is_dir():
        raise RegistryError(
            f"checkpoint directory {directory} does not exist: set AOFL_CHECKPOINT_DIR or "
            f"train one with `python -m aofl train --data synthetic --out {directory}/full`"
        )
    path = directory / MANIFEST_NAME
    if not path.exists():
        return _scan(directory)
    try:
        stat = path.stat()
    except OSError as e:
        raise RegistryError(f"{path} cannot be read ({e})") from e
    # the app reads the manifest on every rerun: parse it again only when the file changed
    return list(_parsed_manifest(str(path), stat.st_mtime_ns, stat.st_size))


@functools.lru_cache(maxsize=8)
def _parsed_manifest(path_str: str, mtime_ns: int, size: int) -> tuple[CheckpointEntry, ...]:
    path = Path(path_str)
    directory = path.parent
    try:
        raw = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise RegistryError(f"{path} is not valid JSON ({e}); fix or delete it") from e
    if isinstance(raw, dict):
        raw = raw.get("checkpoints", [])
    if not isinstance(raw, list):
        raise RegistryError(f"{path} must hold a list of checkpoint entries")
    entries = [_entry_from_dict(d, directory, i) for i, d in enumerate(raw)]
    names = [e.name for e in entries]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise RegistryError(f"{path}: duplicate checkpoint names {dup}")
    return tuple(entries)


def list_checkpoints(
    dataset: str | None = None, directory: Path | str | None = None, existing_only: bool = True
) -> list[CheckpointEntry]:
    """Entries for one dataset (all when None), whose files exist unless existing_only=False."""
    entries = read_manifest(directory)
    if dataset is not None:
        entries = [e for e in entries if e.dataset == dataset]
    if existing_only:
        entries = [e for e in entries if e.path.exists()]
    return entries
