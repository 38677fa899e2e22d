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
    p.add_argument(
        "checkpoints",
        nargs="*",
        help="two or more checkpoints; the first is the reference (not with --seeds)",
    )
    p.add_argument(
        "--seeds",
        action="store_true",
        help="compare variants as all their seed runs (results/runs, else the kept predictions): WF1 per "
        "seed with mean and CI, θ/φ pooled over seeds, α start → end; what the Ablations page shows",
    )
    p.add_argument(
        "--variants",
        nargs="+",
        default=None,
        metavar="ARM",
        help="with --seeds: the variants (experiment arms) to compare, in this order (default: all)",
    )
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

    if args.seeds:
        return _run_seeds(args)
    if len(args.checkpoints) < 2:
        raise UserError("compare needs at least two checkpoints (or --seeds --variants ...)")
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
                    "single_seed": True,  # one checkpoint per variant: `--seeds` compares all seeds
                },
                indent=2,
            )
        )
        return 0
    import pandas as pd

    with pd.option_context("display.width", 200, "display.max_columns", None):
        print(metrics.round(4).to_string(index=False))
    print(
        f"95% bootstrap intervals over {metrics['resampled'].iloc[0]} ({args.n_boot} resamples); "
        "single-seed comparison: each checkpoint is one seed of its variant (compare --seeds for all)"
    )
    print(
        f"{len(flips)} utterances change prediction between the checkpoints"
        + (f" (written to {args.flips})" if args.flips else "")
    )
    return 0


def _run_seeds(args) -> int:
    """`compare --data D --variants A B ... --seeds`: the Ablations page's seeds view."""
    from ..seeds import compare_seeds

    if args.checkpoints:
        raise UserError("--seeds compares variants by their seed runs: name them with --variants, not files")
    try:
        comparison = compare_seeds(args.data, args.variants)
    except ValueError as e:
        raise UserError(str(e)) from None
    if comparison.runs.empty:
        raise UserError(
            f"no seed runs kept for {args.data} (results/runs/{args.data}/ or the kept predictions' summary)"
        )
    if args.json:
        print(json.dumps(comparison.to_json(), indent=2))
        return 0
    import pandas as pd

    print(f"{args.data}: {comparison.source}")
    with pd.option_context("display.width", 200, "display.max_columns", None):
        print(comparison.summary.round(2).to_string(index=False))
        if not comparison.shares.empty:
            print(comparison.shares.round(3).to_string(index=False))
    if comparison.single_seed:
        print("single-seed comparison: one run per variant, no interval over seeds")
    return 0
