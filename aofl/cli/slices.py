"""`python -m aofl slices CHECKPOINT ...`: weighted F1, accuracy and angles per slice of a split.

The slice definitions are `aofl.slices`' (emotion shift, turn position, dialogue length, speaker,
utterance length). `--json` prints {"checkpoint", "split", "n", "n_boot", "skipped", "slices": [{slice,
value, n, weighted_f1, weighted_f1_low, weighted_f1_high, accuracy, accuracy_low, accuracy_high,
n_dialogues, theta_<m>, phi_<m>}, ...]} with F1 and accuracy in 0-1 and angles in degrees (no angle keys
for a model without the shared/specific split). The intervals resample the slice's dialogues; a slice
from one dialogue has none (null).
"""

from __future__ import annotations

import json

__all__ = ["add_parser", "run"]


def run(args) -> int:
    from ..slices import SLICE_KINDS, SLICE_TITLES, skipped_slices, slice_metrics
    from ..table import table_modalities
    from .common import inference_of, json_records

    args.drop = []
    result, _ = inference_of(args)
    table = result.table
    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()] if args.kinds else None
    df = slice_metrics(table, kinds, n_boot=args.n_boot, seed=args.seed, top_k_speakers=args.top_speakers)
    skipped = skipped_slices(table, kinds or SLICE_KINDS)
    n = int((table["label_id"] >= 0).sum())
    if args.json:
        rows = json_records(df)
        print(
            json.dumps(
                {
                    "checkpoint": str(args.checkpoint),
                    "split": args.split,
                    "n": n,
                    "n_boot": args.n_boot,
                    "skipped": skipped,
                    "slices": rows,
                },
                indent=2,
            )
        )
        return 0
    mods = table_modalities(table)
    print(
        f"{args.checkpoint}  {args.data}/{args.split}  n={n}  (95% bootstrap CIs over dialogues, "
        f"{args.n_boot} resamples; none for a slice from one dialogue)"
    )
    for kind, part in df.groupby("slice", sort=False):
        print(f"\n{SLICE_TITLES.get(kind, kind)}")
        width = max(12, int(part["value"].str.len().max()))
        for r in part.itertuples(index=False):
            d = r._asdict()
            angles = "  ".join(f"theta_{m} {d[f'theta_{m}']:.1f} phi_{m} {d[f'phi_{m}']:.1f}" for m in mods)
            print(
                f"  {r.value:>{width}s}  n={r.n:<6d} WF1 {r.weighted_f1:.4f} "
                f"{_interval(r.weighted_f1_low, r.weighted_f1_high)}  acc {r.accuracy:.4f} "
                f"{_interval(r.accuracy_low, r.accuracy_high)}" + (f"  {angles}" if angles else "")
            )
    for kind, why in skipped.items():
        print(f"\n{SLICE_TITLES.get(kind, kind)}: {why}")
    return 0


def _interval(low: float, high: float) -> str:
    return "[no interval: one dialogue]" if low != low else f"[{low:.4f}, {high:.4f}]"  # NaN != NaN


def add_parser(subparsers) -> None:
    from .common import add_common_args, add_data_args

    p = subparsers.add_parser(
        "slices",
        help="weighted F1, accuracy and mean angles per slice (emotion shift, turn "
        "position, dialogue length, speaker, utterance length) with bootstrap CIs",
    )
    p.add_argument("checkpoint")
    add_data_args(p)
    p.add_argument("--split", default="test")
    p.add_argument(
        "--kinds",
        default=None,
        help="comma-separated slice kinds (default all): emotion_shift, turn_position, dialogue_length, "
        "speaker, utterance_length",
    )
    p.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples per slice value")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    p.add_argument(
        "--top-speakers", type=int, default=8, help="keep the N most frequent speakers, group the rest"
    )
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--json", action="store_true")
    add_common_args(p)
    p.set_defaults(func=run)
