"""`python -m aofl inspect FILE`: describe a file, or one dialogue's per-utterance predictions and angles."""

from __future__ import annotations

import argparse
import json

from .common import UserError, add_common_args, inference_of

__all__ = ["add_parser", "run"]


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "inspect",
        help="describe a checkpoint or data file; with --data/--split/--dialogue/--drop, "
        "one dialogue's per-utterance predictions and angles",
    )
    p.add_argument(
        "checkpoint",
        metavar="FILE",
        help="checkpoint (.safetensors, .pt), data file (.pkl, .csv, .npz, .parquet, MANIFEST.json) or "
        "directory; read with the safe loaders only, so a hostile file is refused, never run",
    )
    # None = not given: any of these given selects the dialogue view (see cmd_inspect)
    p.add_argument(
        "--data", default=None, help="dialogue view: dataset synthetic, iemocap or meld (default synthetic)"
    )
    p.add_argument(
        "--data-seed", type=int, default=None, help="dialogue view: seed of the synthetic generator (0)"
    )
    p.add_argument("--split", default=None, help="dialogue view: split (default test)")
    p.add_argument(
        "--dialogue", default=None, help="dialogue view: dialogue id (default: the first of the split)"
    )
    p.add_argument(
        "--drop",
        action="append",
        default=None,
        metavar="MODALITY[=zero|mean]",
        help="dialogue view what-if: replace a modality by zeros or its training mean",
    )
    p.add_argument("--json", action="store_true", help="print the description (or the dialogue) as JSON")
    add_common_args(p)
    p.set_defaults(func=run)
    return p


_DIALOGUE_VIEW = {"data": "synthetic", "data_seed": 0, "split": "test", "dialogue": None, "drop": []}


def run(args) -> int:
    """`inspect FILE` describes the file; any dialogue-view option switches to one dialogue's
    per-utterance table (the command's original form, which always named --data)."""
    if all(getattr(args, k) is None for k in _DIALOGUE_VIEW):
        return _describe_file(args)
    for k, default in _DIALOGUE_VIEW.items():
        if getattr(args, k) is None:
            setattr(args, k, default)
    result, dataset = inference_of(args)
    t = result.table
    dialogue = args.dialogue or t["dialogue"].iloc[0]
    rows = t[t["dialogue"] == dialogue]
    if rows.empty:
        raise UserError(
            f"no dialogue {dialogue!r} in split {args.split}; e.g. {', '.join(t['dialogue'].unique()[:5])}"
        )
    cols = ["utterance_id", "position", "speaker", "text", "label", "prediction", "confidence", "correct"] + [
        c for c in t.columns if c.startswith(("theta_", "phi_"))
    ]
    if args.json:
        print(
            json.dumps(
                {
                    "dialogue": dialogue,
                    "split": args.split,
                    "alpha_deg": result.alpha_deg,
                    "utterances": json.loads(rows[cols].to_json(orient="records")),
                },
                indent=2,
            )
        )
    else:
        import pandas as pd

        with pd.option_context("display.max_rows", None, "display.width", 200, "display.max_colwidth", 50):
            print(rows[cols].round(2).to_string(index=False))
    return 0


def _describe_file(args) -> int:
    from ..device import configure_runtime
    from ..store.inspect import describe_file, format_description

    configure_runtime(args.threads)
    info = describe_file(args.checkpoint)  # DescribeError (one line) for a missing, broken or hostile file
    print(json.dumps(info, indent=2) if args.json else format_description(info))
    return 0
