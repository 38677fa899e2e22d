"""`python -m aofl data ...`: list, info, prepare and download datasets."""

from __future__ import annotations

import argparse
import json
import sys
import time

from ..data.conversation import DataError
from ..data.real import DEFAULT_VIEWS, TEXT_VIEWS

__all__ = ["add_parser", "run"]


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "data",
        help="list, inspect, prepare and download datasets",
        description="Real IEMOCAP / MELD data: files live in $AOFL_DATA_DIR "
        "(default ~/.cache/aofl/data), caches in $AOFL_CACHE_DIR.",
    )
    sub = p.add_subparsers(dest="data_command", metavar="{list,info,prepare,download}")
    sub.required = True

    q = sub.add_parser("list", help="datasets available here, with counts")
    q.add_argument("--json", action="store_true", help="machine-readable output")
    q.add_argument(
        "--data-dir", default=None, help="data directory (default: $AOFL_DATA_DIR or ~/.cache/aofl/data)"
    )

    q = sub.add_parser("info", help="splits, classes, speakers and prepared views of one dataset")
    q.add_argument("name", help="synthetic, iemocap or meld (or one with its views: iemocap+sentence+tuned)")
    q.add_argument("--json", action="store_true", help="machine-readable output")
    q.add_argument("--data-dir", default=None)

    q = sub.add_parser("prepare", help="compute and cache the text views of iemocap or meld")
    q.add_argument("name", choices=["iemocap", "meld"])
    q.add_argument(
        "--views",
        nargs="+",
        default=list(DEFAULT_VIEWS),
        choices=list(TEXT_VIEWS),
        help="text views to compute (default: sentence lexicon tfidf; `tuned` fine-tunes "
        "all-MiniLM-L6-v2 with context, cross-fitted: tens of CPU minutes, resumable)",
    )
    q.add_argument("--device", default="cpu", help="tuned view: cpu (default), cuda or auto")
    q.add_argument("--threads", type=int, default=2, help="tuned view: torch CPU threads (default 2)")
    q.add_argument("--data-dir", default=None)
    q.add_argument(
        "--limit", type=int, default=None, help="only the first N dialogues of each split (quick try)"
    )
    q.add_argument("--no-progress", action="store_true")

    from ..store.download import OLD_SPELLINGS, SOURCES, source_name

    q = sub.add_parser("download", help="download pinned public files and verify their hashes")
    q.add_argument(
        "name",
        type=source_name,  # `multiemo-iemocap`, the spelling before the dataset-first one, still works
        choices=sorted(SOURCES),
        metavar="{" + ",".join(sorted(SOURCES)) + "}",
        help="what to download, named as it loads (the old spellings "
        + ", ".join(f"{old} = {new}" for old, new in OLD_SPELLINGS.items())
        + " are accepted)",
    )
    q.add_argument("--dest", default=None, help="target data directory (default: the data directory)")
    q.add_argument(
        "--base-url",
        default=None,
        help="mirror replacing https://raw.githubusercontent.com (or set AOFL_DOWNLOAD_BASE)",
    )
    q.add_argument("--force", action="store_true", help="download even if verified files are present")
    q.add_argument("--no-progress", action="store_true")

    p.set_defaults(func=run)
    return p


def _dataset_info(name: str, data_dir) -> dict:
    from ..data import real
    from ..data.multiemo import multiemo_available

    if name == "synthetic":
        from ..data import load_dataset

        s = load_dataset("synthetic").summary()
        return {
            "name": "synthetic",
            "available": True,
            "classes": s["classes"],
            "splits": s["splits"],
            "modalities": s["modalities"],
            "description": s["description"],
        }
    from ..data import DatasetName

    # `iemocap+sentence+tuned`: iemocap's info, and whether those views are prepared
    parsed = DatasetName.parse(name)
    if parsed.source == "multiemo" and parsed.base in ("iemocap", "meld"):
        return _multiemo_info(parsed.base, data_dir)
    name, views = parsed.plain, parsed.views or None
    if name not in ("iemocap", "meld"):
        raise DataError(f"unknown dataset {name!r}; choose synthetic, iemocap or meld")
    root = real._root(data_dir)
    info = {
        "name": name,
        "data_dir": str(root),
        "available": real.is_available(name, root),
        "multiemo_features": multiemo_available(name, root),
    }
    if not info["available"]:
        info["hint"] = real.missing_files_message(name, root)
        return info
    t = real.load_transcripts(name, root)
    from ..data import textviews

    paths = textviews.cache_paths(t)
    prepared = {}
    for v, p in paths.items():
        if p.is_file():
            import numpy as np

            with np.load(p, allow_pickle=False) as z:
                prepared[v] = {"dim": int(z["X"].shape[1]), "path": str(p)}
    info.update(
        {
            "classes": list(t.label_names),
            "splits": {s: {"dialogues": n_d, "utterances": n_u} for s, (n_d, n_u) in t.counts().items()},
            "speakers": len({s for d in t.dialogues() for s in d.speakers}),
            "prepared_views": prepared,
            "description": real.DESCRIPTIONS[name],
        }
    )
    if views is not None:
        info["views"] = list(views)
        info["views_missing"] = [v for v in views if v not in prepared]
    if "tuned" in prepared:  # the name the app and `--data` load these views by
        from ..data import TUNED_VIEWS

        info["load_as"] = str(DatasetName(name, views=TUNED_VIEWS))
    return info


def _multiemo_info(base: str, data_dir) -> dict:
    """`<base>-multiemo`: MultiEMO's audio/text/visual features, which load without the transcripts."""
    from ..data import DatasetName, loaders, real
    from ..data.multiemo import multiemo_available, multiemo_dir

    root = real._root(data_dir)
    name = str(DatasetName(base, "multiemo"))
    info = {"name": name, "data_dir": str(multiemo_dir(base, root))}
    if not multiemo_available(base, root):
        info.update(
            available=False,
            hint=f"MultiEMO features not found in {info['data_dir']}; get them with "
            f"`python -m aofl data download {name}`",
        )
        return info
    s = loaders.load(base, features="multiemo", data_dir=root).summary()
    info.update(
        available=True,
        classes=s["classes"],
        splits=s["splits"],
        modalities=s["modalities"],
        description=s["description"],
    )
    return info


def _print_info(info: dict) -> None:
    print(f"{info['name']}: {'available' if info['available'] else 'not available'}")
    if "hint" in info:
        print(f"  {info['hint']}")
        return
    if "modalities" in info and info["name"].endswith("-multiemo"):
        dims = ", ".join(f"{m} {d}-d" for m, d in info["modalities"].items())
        print(f"  MultiEMO features ({dims}) in {info['data_dir']}; train with `--data {info['name']}`")
    elif "data_dir" in info:
        print(f"  data dir: {info['data_dir']}")
    print(f"  classes: {', '.join(info['classes'])}")
    for s, c in info["splits"].items():
        print(f"  {s:<6} {c['dialogues']:>5} dialogues {c['utterances']:>6} utterances")
    if "speakers" in info:
        print(f"  distinct speakers: {info['speakers']}")
    if "prepared_views" in info:
        pv = info["prepared_views"]
        print(
            "  text views: "
            + (
                ", ".join(f"{v} ({x['dim']}-d)" for v, x in pv.items())
                or f"none prepared (run `python -m aofl data prepare {info['name']}`)"
            )
        )
        if "views" in info:
            missing = info["views_missing"]
            print(
                f"  views asked for: {' '.join(info['views'])} "
                + (f"(not prepared: {' '.join(missing)})" if missing else "(all prepared)")
            )
        if "load_as" in info:
            print(f"  load as: {info['load_as']}")
        print(f"  MultiEMO features: {'present' if info.get('multiemo_features') else 'absent'}")


def run(args) -> int:
    cmd = getattr(args, "data_command", None)
    try:
        if cmd == "list":
            from ..data import listed_names

            infos = [_dataset_info(n, args.data_dir) for n in listed_names(args.data_dir)]
            if args.json:
                print(json.dumps(infos, indent=2))
            else:
                for info in infos:
                    _print_info(info)
            return 0
        if cmd == "info":
            info = _dataset_info(args.name, args.data_dir)
            print(json.dumps(info, indent=2)) if args.json else _print_info(info)
            return 0 if info["available"] else 1
        if cmd == "prepare":
            from ..data import textviews

            t0 = time.time()
            from ..device import resolve_device

            device = str(resolve_device(args.device))
            paths = textviews.prepare(
                args.name,
                data_dir=args.data_dir,
                views=tuple(args.views),
                progress=not args.no_progress,
                limit=args.limit,
                device=device,
                threads=args.threads,
            )
            import numpy as np

            for v, p in paths.items():
                with np.load(p, allow_pickle=False) as z:
                    print(f"{args.name} {v}: {z['X'].shape[0]} x {z['X'].shape[1]} -> {p}")
            print(f"done in {time.time() - t0:.1f}s")
            return 0
        if cmd == "download":
            from ..store.download import download

            paths = download(
                args.name,
                dest=args.dest,
                base_url=args.base_url,
                progress=not args.no_progress,
                force=args.force,
            )
            for p in paths:
                print(f"ok {p}")
            return 0
    except DataError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print("usage: python -m aofl data {list,info,prepare,download} ...", file=sys.stderr)
    return 2
