"""Write checkpoints/MANIFEST.json from the checkpoints on disk.

Every entry's metrics are measured now by evaluating the stored file (fp16 weights included)
on the test split, exactly as `python -m aofl evaluate FILE --data D --split test --json` does,
so the manifest never carries a number that the shipped file does not reproduce.

    python tools/build_manifest.py            # all checkpoints/*/*/model.safetensors
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from aofl.data import load_dataset  # noqa: E402
from aofl.evaluate import evaluate  # noqa: E402
from aofl.store.checkpoint import load_checkpoint  # noqa: E402
from aofl.store.registry import MANIFEST_NAME, checkpoint_dataset, manifest_entry, write_manifest  # noqa: E402


def main() -> int:
    ck_dir = ROOT / "checkpoints"
    entries, datasets = [], {}
    for path in sorted(ck_dir.glob("*/*/model.safetensors")):
        model, meta = load_checkpoint(path)
        name = checkpoint_dataset(
            meta
        )  # with its views when not the default ones: iemocap+sentence+...+tuned
        if name not in datasets:
            datasets[name] = load_dataset(
                name, **({"seed": meta["data"].get("seed", 0)} if name == "synthetic" else {})
            )
        res = evaluate(model, datasets[name], "test")
        trained = meta.get("metrics", {}).get("test", {}).get("weighted_f1")
        if trained is not None and abs(trained - res["weighted_f1"]) > 1e-3:
            print(
                f"warning: {path}: stored weights give test WF1 {res['weighted_f1']:.4f}, "
                f"the fp32 model gave {trained:.4f}",
                file=sys.stderr,
            )
        entry = manifest_entry(
            ck_dir,
            path,
            meta,
            metrics={"weighted_f1": round(res["weighted_f1"], 6), "accuracy": round(res["accuracy"], 6)},
            command=meta["command"],
            dtype=meta.get("dtype"),
            bytes=path.stat().st_size,
        )
        if "disentanglement" in res:
            entry["disentanglement"] = {
                k: round(v, 4) for k, v in res["disentanglement"].items() if isinstance(v, float)
            }
        entries.append(entry)
        print(
            f"{entry['name']:32s} WF1 {res['weighted_f1']:.4f}  acc {res['accuracy']:.4f}  {entry['bytes'] / 1e6:.2f} MB"
        )
    write_manifest(ck_dir, entries)
    print(f"wrote {len(entries)} entries to {ck_dir / MANIFEST_NAME}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
