"""`python -m aofl embed CHECKPOINT ...`: 2-D coordinates of a checkpoint's features (Figure 5)."""

from __future__ import annotations

import json
from pathlib import Path

from ..embed import METHODS, EmbedSpec

__all__ = ["add_parser", "run", "spec_from_args"]


def spec_from_args(args) -> EmbedSpec:
    """The EmbedSpec of the command's flags (--method, --kinds, --modalities, --max-points, --seed)."""
    kinds = tuple(k.strip() for k in args.kinds.split(",") if k.strip())
    mods = tuple(m.strip() for m in args.modalities.split(",") if m.strip()) if args.modalities else None
    return EmbedSpec(
        method=args.method, kinds=kinds, modalities=mods, max_points=args.max_points, seed=args.seed
    )


def run(args) -> int:
    from ..embed import embed_spec
    from .common import inference_of, write_table

    args.drop = []
    result, _ = inference_of(args)
    spec = spec_from_args(args)
    kinds = list(spec.kinds)
    df, info = embed_spec(result, spec, cache=not args.no_cache)
    out = Path(args.out)
    write_table(df, out)  # atomic: a reader never sees half a table
    if args.json:
        print(json.dumps({"out": str(out), "rows": len(df), **info}, default=str))
    else:
        sub = f" (stratified subsample of {info['n_total']})" if info["subsampled"] else ""
        print(
            f"wrote {len(df)} rows to {out}: {info['method']} of {', '.join(kinds)}, {info['n_shown']} points per "
            f"panel{sub}, {info['seconds']:.1f} s"
        )
    return 0


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "embed", help="2-D embedding (PCA / t-SNE / UMAP) of shared / specific features"
    )
    p.add_argument("checkpoint")
    p.add_argument("--data", default="synthetic", help="dataset: synthetic, iemocap or meld")
    p.add_argument("--data-seed", type=int, default=0)
    p.add_argument("--split", default="test")
    p.add_argument(
        "--method",
        default=EmbedSpec.method,
        choices=list(METHODS),
        help="tsne (default: fast, as trustworthy as sklearn TSNE), umap or pca",
    )
    p.add_argument(
        "--kinds",
        default=",".join(EmbedSpec.kinds),
        help="comma-separated: shared, specific, refined_shared, refined_specific, context",
    )
    p.add_argument("--modalities", default=None, help="comma-separated (default: all)")
    p.add_argument("--max-points", type=int, default=None, help="stratified subsample to N points per panel")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, help=".csv or .parquet")
    p.add_argument("--no-cache", action="store_true", help="do not read or write the embedding disk cache")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--json", action="store_true")
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=None)
    p.set_defaults(func=run)
