"""Rewrite the data fingerprint stored in the shipped checkpoints, without retraining.

`ConversationSet.fingerprint` hashes what makes "the same data" (ids, speakers, labels,
transcripts, each view's recipe) instead of the feature floats, which differ in the last bits
between machines. The checkpoints trained before that change carry the float hash, which no other
machine reproduces. This tool loads each checkpoint's dataset, replaces `meta["data"]["fingerprint"]`
with the dataset's current fingerprint, writes the file back with byte-identical tensors (checked),
and updates the entry's sha256 and size in checkpoints/MANIFEST.json (its metrics stay: the weights
did not change).

    python tools/refingerprint_checkpoints.py          # all checkpoints/*/*/model.safetensors
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from safetensors.torch import load_file, save  # noqa: E402

from aofl.data import load_dataset  # noqa: E402
from aofl.io.atomic import atomic_write_bytes  # noqa: E402
from aofl.io.hashing import file_sha256  # noqa: E402
from aofl.store.checkpoint import read_metadata  # noqa: E402
from aofl.store.registry import checkpoint_dataset, write_manifest  # noqa: E402


def refingerprint(path: Path, fingerprint: str) -> bool:
    """Store `fingerprint` in the checkpoint at `path`; True when the file changed."""
    meta = read_metadata(path)
    if meta["data"].get("fingerprint") == fingerprint:
        return False
    tensors = load_file(path)
    meta["data"]["fingerprint"] = fingerprint
    atomic_write_bytes(path, save(tensors, metadata={"aofl": json.dumps(meta)}))
    again = load_file(path)
    if set(again) != set(tensors) or any(
        again[k].dtype != v.dtype or not again[k].equal(v) for k, v in tensors.items()
    ):
        raise SystemExit(f"{path}: tensors changed on rewrite")
    return True


def main() -> int:
    ck_dir = ROOT / "checkpoints"
    manifest_path = ck_dir / "MANIFEST.json"
    manifest = json.loads(manifest_path.read_text())
    by_file = {e["file"]: e for e in manifest}
    datasets: dict[str, str] = {}
    for path in sorted(ck_dir.glob("*/*/model.safetensors")):
        meta = read_metadata(path)
        name = checkpoint_dataset(meta)
        key = f"{name}:{meta['data'].get('seed', 0)}"
        if key not in datasets:
            kwargs = {"seed": meta["data"].get("seed", 0)} if name == "synthetic" else {"progress": False}
            datasets[key] = load_dataset(name, **kwargs).fingerprint()
        old = meta["data"].get("fingerprint")
        changed = refingerprint(path, datasets[key])
        entry = by_file.get(str(path.relative_to(ck_dir)))
        if entry is not None:
            entry["sha256"] = file_sha256(path)
            entry["bytes"] = path.stat().st_size
        print(f"{path.relative_to(ck_dir)}: {old} -> {datasets[key]}{'' if changed else ' (unchanged)'}")
    write_manifest(ck_dir, manifest)
    return 0


if __name__ == "__main__":
    sys.exit(main())
