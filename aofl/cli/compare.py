"""`python -m aofl compare A B ...`: what the Ablations page shows, from the command line."""

from __future__ import annotations

import argparse
import json

from .common import (
    UserError,
    add_common_args,
    add_data_args,
    check_trained_on,
    load_data,
    setup_device,
    write_table,
)

__all__ = ["add_parser", "run"]


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "compare", help="ablation comparison: metrics with bootstrap CIs, paired test, flips"
    )
    p.add_argument("checkpoints", nargs="+", help="two or more checkpoints; the first is the reference")
    add_data_args(p)
    p.add_argument("--split", default="test")
    p.add_argument("--n-boot", type=int, default=1000)
    p.add_argument("--flips", default=None, metavar="CSV", help="write the utterances whose prediction flips")
    p.add_argument("--json", action="store_true")
    add_common_args(p)
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    """What the Ablations page shows, from the command line."""
    from ..analysis import ablation_metrics, prediction_flips
    from ..evaluate import disentanglement_scores
    from ..inference import run_inference
    from ..store.checkpoint import load_checkpoint

    if len(args.checkpoints) < 2:
        raise UserError("compare needs at least two checkpoints")
    device = setup_device(args)
    dataset = load_data(args)
    tables, dis = {}, {}
    for path in args.checkpoints:
        model, meta = load_checkpoint(path, device=device)
        check_trained_on(meta, path, dataset)
        name = f"{meta.get('variant', 'model')}-seed{meta.get('seed', '?')}"
        if name in tables:
            name = f"{name}-{len(tables)}"
        result = run_inference(model, dataset, args.split)
        tables[name] = result.table
        scores = disentanglement_scores(result)
        if scores is not None:
            dis[name] = {k: v for k, v in scores.items() if isinstance(v, float)}
    metrics = ablation_metrics(tables, n_boot=args.n_boot)
    flips = prediction_flips(tables)
    if args.flips:
        write_table(flips, args.flips, parquet=False)
    if args.json:
        print(
            json.dumps(
                {
                    "split": args.split,
                    "reference": next(iter(tables)),
                    "metrics": json.loads(metrics.to_json(orient="records")),
                    "n_flips": int(len(flips)),
                    "disentanglement": dis or None,
                },
                indent=2,
            )
        )
        return 0
    import pandas as pd

    with pd.option_context("display.width", 200, "display.max_columns", None):
        print(metrics.round(4).to_string(index=False))
    print(
        f"{len(flips)} utterances change prediction between the checkpoints"
        + (f" (written to {args.flips})" if args.flips else "")
    )
    return 0
