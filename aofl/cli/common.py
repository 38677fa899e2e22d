"""What the commands share: common options, loading the data and a checkpoint, writing tables."""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from ..errors import AOFLError

__all__ = [
    "json_safe",
    "json_records",
    "UserError",
    "add_common_args",
    "add_data_args",
    "load_data",
    "parse_drop",
    "parse_seeds",
    "setup_device",
    "load_model",
    "check_trained_on",
    "write_table",
    "inference_of",
]


class UserError(AOFLError):
    """A problem the user can fix; printed as one line, exit status 2."""


def add_common_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="auto", help="auto (CUDA if present), cpu or cuda")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default $AOFL_THREADS or 1)")
    p.add_argument(
        "--allow-unsafe-load",
        action="store_true",
        help="trust the files this command reads: load pickles and .pt files that contain code "
        "(sets AOFL_ALLOW_UNSAFE_LOAD=1; warns per file; see README, Security)",
    )


def add_data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--data",
        default="synthetic",
        help="dataset: synthetic, iemocap or meld; a real one with other views is named with them, "
        "e.g. iemocap+sentence+lexicon+tfidf+tuned",
    )
    p.add_argument("--data-seed", type=int, default=0, help="seed of the synthetic generator")
    p.add_argument(
        "--views",
        nargs="+",
        default=None,
        metavar="VIEW",
        help="iemocap/meld text views used as modalities (default: sentence lexicon tfidf; "
        "add `tuned` after `python -m aofl data prepare NAME --views tuned`)",
    )


def load_data(args):
    from ..data import load_dataset

    views = getattr(args, "views", None)
    if args.data == "synthetic":
        if views:
            raise ValueError(
                "--views picks iemocap/meld text views; the synthetic dataset has its own modalities"
            )
        return load_dataset("synthetic", seed=args.data_seed)
    _check_views_agree(args.data, views)
    return load_dataset(args.data, **({"views": tuple(views)} if views else {}))


def _check_views_agree(data: str, views) -> None:
    """`--data iemocap+sentence+tuned` names its views already: `--views` may only repeat them."""
    from ..data import DatasetName

    named = DatasetName.parse(data)
    if views and named.views and tuple(views) != named.views:
        raise UserError(
            f"--data {data} names the views {' '.join(named.views)}, but --views gives {' '.join(views)}: "
            f"drop --views, or use --data {named.plain} --views {' '.join(views)}"
        )


def parse_seeds(values: list[str]) -> list[int]:
    """`0 1 2` or `0-9` (inclusive ranges) or both."""
    seeds: list[int] = []
    for v in values:
        lo, _, hi = v.partition("-")
        try:
            seeds += list(range(int(lo), int(hi) + 1)) if hi else [int(lo)]
        except ValueError:
            raise ValueError(f"--seeds takes integers or ranges like 0-9, not {v!r}") from None
    return list(dict.fromkeys(seeds))


def parse_drop(items: list[str]) -> dict[str, str] | None:
    out = {}
    for item in items:
        m, _, mode = item.partition("=")
        out[m] = mode or "zero"
    return out or None


def setup_device(args):
    from ..device import configure_runtime, resolve_device

    configure_runtime(args.threads)
    return resolve_device(args.device)


def load_model(args, dataset):
    from ..store.checkpoint import load_checkpoint

    model, meta = load_checkpoint(args.checkpoint, device=setup_device(args))
    check_trained_on(meta, args.checkpoint, dataset)
    return model, meta


def check_trained_on(meta: dict, path, dataset) -> None:
    """A checkpoint used on other data than it was trained on is a user error, not a crash."""
    from ..compatibility import check_compatible

    for warning in check_compatible(meta, dataset, source=str(path)):
        print(f"warning: {warning}", file=sys.stderr)


def json_safe(obj):
    """JSON-safe values for `--json` output: numpy scalars to Python, NaN and inf to null, through
    dicts and lists."""
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if hasattr(obj, "item"):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def json_records(df) -> list[dict]:
    """A DataFrame's rows as JSON-safe dicts."""
    return json_safe(df.to_dict(orient="records"))


def write_table(df, out, parquet: bool | None = None) -> None:
    """CSV, or parquet (default: by suffix), written atomically: a reader never sees half a table."""
    from ..io.atomic import atomic_write

    out = Path(out)
    if out.suffix == ".parquet" if parquet is None else parquet:
        atomic_write(out, lambda tmp: df.to_parquet(tmp, index=False))
        return
    from pandas.io.common import infer_compression

    # the temp file's name ends in .tmp: take the compression (.csv.gz ...) from the real name
    compression = infer_compression(str(out), "infer")
    atomic_write(out, lambda tmp: df.to_csv(tmp, index=False, compression=compression))


def inference_of(args):
    """(InferenceResult, dataset) of `args.checkpoint` on `args.split` (inspect, infer, embed, slices)."""
    from ..inference import run_inference

    dataset = load_data(args)
    model, meta = load_model(args, dataset)
    return run_inference(
        model, dataset, args.split, batch_size=getattr(args, "batch_size", 64), drop=parse_drop(args.drop)
    ), dataset
