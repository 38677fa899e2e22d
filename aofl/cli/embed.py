"""`python -m aofl embed CHECKPOINT ...`: 2-D coordinates of a checkpoint's features (Figure 5)."""
from __future__ import annotations

import json
from pathlib import Path

__all__ = ["add_parser", "run"]


def run(args) -> int:
    from .common import inference_of, write_table
    from ..embed import embed_features

    args.drop = []
    result, _ = inference_of(args)
    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    mods = [m.strip() for m in args.modalities.split(",") if m.strip()] if args.modalities else None
    df, info = embed_features(result, kinds=kinds, modalities=mods, method=args.method, max_points=args.max_points,
                              seed=args.seed, cache=not args.no_cache)
    out = Path(args.out)
    write_table(df, out)  # atomic: a reader never sees half a table
    if args.json:
        print(json.dumps({"out": str(out), "rows": len(df), **info}, default=str))
    else:
        sub = f" (stratified subsample of {info['n_total']})" if info["subsampled"] else ""
        print(f"wrote {len(df)} rows to {out}: {info['method']} of {', '.join(kinds)}, {info['n_shown']} points per "
              f"panel{sub}, {info['seconds']:.1f} s")
    return 0


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("embed", help="2-D embedding (PCA / t-SNE / UMAP) of shared / specific features")
    p.add_argument("checkpoint")
    p.add_argument("--data", default="synthetic", help="dataset: synthetic, iemocap or meld")
    p.add_argument("--data-seed", type=int, default=0)
    p.add_argument("--split", default="test")
    p.add_argument("--method", default="tsne", choices=["pca", "tsne", "umap"],
                   help="tsne (default: fast, as trustworthy as sklearn TSNE), umap or pca")
    p.add_argument("--kinds", default="shared,specific",
                   help="comma-separated: shared, specific, refined_shared, refined_specific, context")
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
