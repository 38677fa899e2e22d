"""`python -m aofl evaluate CHECKPOINT`: metrics of a checkpoint on a split."""

from __future__ import annotations

import argparse
import json

from .common import add_common_args, add_data_args, load_data, load_model

__all__ = ["add_parser", "run"]


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("evaluate", help="metrics of a checkpoint on a split")
    p.add_argument("checkpoint")
    add_data_args(p)
    p.add_argument("--split", default="test")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--json", action="store_true")
    add_common_args(p)
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    from ..evaluate import evaluate
    from ..table import DISENTANGLEMENT_KEYS

    dataset = load_data(args)
    model, meta = load_model(args, dataset)
    out = evaluate(model, dataset, args.split, batch_size=args.batch_size)
    out["checkpoint"] = meta["path"]
    out["checkpoint_sha256"] = meta["sha256"]
    fp = (meta.get("data") or {}).get("fingerprint")
    out["data_fingerprint_matches"] = fp == dataset.fingerprint() if fp else None
    # how the checkpoint was trained: per-epoch losses, clip factor and dynamics (aofl/dynamics.py)
    out["training"] = {
        "best_epoch": meta.get("best_epoch"),
        "train_config": meta.get("train_config"),
        "history": meta.get("history") or [],
    }
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    print(f"{meta['path']}  variant={out['variant']}  {dataset.name}/{args.split}  n={out['n']}")
    print(
        f"weighted F1 {out['weighted_f1']:.4f}   accuracy {out['accuracy']:.4f}   macro F1 {out['macro_f1']:.4f}"
    )
    for name, f in out["per_class_f1"].items():
        print(f"  {name:>12s}  F1 {f:.4f}  (n={out['support'][name]})")
    if out.get("angles"):
        for m, a in out["angles"].items():
            print(
                f"  {m:>12s}  theta {a['theta_mean']:.1f} deg  phi {a['phi_mean']:.1f} deg  "
                f"theta>phi {100 * a['theta_gt_phi']:.1f}%  alpha {a['alpha']:.1f} deg"
            )
    if out.get("disentanglement"):
        d = out["disentanglement"]
        print("  disentanglement (linear CKA): " + ", ".join(f"{k} {d[k]:.3f}" for k in DISENTANGLEMENT_KEYS))
    return 0
