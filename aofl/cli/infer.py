"""`python -m aofl infer CHECKPOINT --out TABLE`: the per-utterance inference table of a split."""

from __future__ import annotations

import argparse
from pathlib import Path

from .common import add_common_args, add_data_args, inference_of, write_table

__all__ = ["add_parser", "run"]


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("infer", help="write the per-utterance inference table of a split")
    p.add_argument("checkpoint")
    add_data_args(p)
    p.add_argument("--split", default="test")
    p.add_argument("--out", required=True, help=".csv or .parquet")
    p.add_argument("--drop", action="append", default=[], metavar="MODALITY[=zero|mean]")
    p.add_argument("--batch-size", type=int, default=64)
    add_common_args(p)
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    result, _ = inference_of(args)
    out = Path(args.out)
    write_table(result.table, out)
    print(f"wrote {len(result.table)} rows to {out}")
    return 0
