"""`python -m aofl bench [--json] [--quick] [--only SECTIONS] [--sessions N]`: the benchmarks of `aofl.bench`.

Each section measures a ratio against a baseline timed in the same run (machines are noisy;
the ratios, not the seconds, are the result). The sections live in `aofl.bench`, so
this works from an installed package; `pages` and `class` also need the app (a source checkout).
`class` (N headless-Chromium sessions against one `streamlit run app.py`, `aofl.bench.classroom`)
and `umap_server` (a real server's memory and first UMAP page with UMAP in its process or in a child,
`aofl.bench.umap_server`) run only when named in --only: they need Chromium and playwright, and minutes.
"""

from __future__ import annotations

import json
import sys
import time

__all__ = ["add_parser", "run", "run_bench", "SECTIONS"]

SECTIONS = ("embed", "pages", "inference", "train", "scale", "class", "umap_server")
DEFAULT_SECTIONS = ("embed", "pages", "inference", "train", "scale")  # what runs without --only
MODULES = {"class": "classroom"}  # a section whose module is not named after it (`class` is a keyword)


def run_bench(
    quick: bool = False, only: list[str] | None = None, log=None, sessions: int | None = None
) -> dict:
    """Run the chosen sections, return one flat dict of ratios plus per-section details.
    `sessions`: how many browser sessions the `class` section opens at once (default 8; 2 with quick)."""
    import importlib

    import torch

    from ..device import configure_runtime, configure_threads

    log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    only = list(only or DEFAULT_SECTIONS)
    unknown = [s for s in only if s not in SECTIONS]
    if unknown:
        raise ValueError(f"unknown bench sections {unknown}; choose from {', '.join(SECTIONS)}")
    runtime = configure_runtime()
    start = time.perf_counter()
    out: dict = {
        "quick": quick,
        "torch_threads_default": torch.get_num_threads(),
        "cpu_count": _cpus(),
        "allocator": runtime["allocator"],
    }
    threads = {}
    for name in only:
        t = time.perf_counter()
        mod = importlib.import_module(f"aofl.bench.{MODULES.get(name, name)}")
        res = mod.run(quick=quick, log=log, **({"sessions": sessions} if name == "class" else {}))
        out.update(res)
        if name in ("inference", "train"):
            threads[name] = res[f"{name}_details"]["threads"]
        out.setdefault("section_seconds", {})[name] = round(time.perf_counter() - t, 1)
        configure_threads()
    if threads:
        out["threads"] = {k: {str(t): v for t, v in d.items()} for k, d in threads.items()}
    out["seconds"] = round(time.perf_counter() - start, 1)
    return out


def _cpus() -> int:
    import os

    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover
        return os.cpu_count() or 1


def run(args) -> int:
    only = [s.strip() for s in args.only.split(",") if s.strip()] if args.only else None
    if args.sessions is not None and args.sessions < 1:
        raise ValueError(f"--sessions must be at least 1, got {args.sessions}")
    out = run_bench(quick=args.quick, only=only, sessions=args.sessions)
    if args.json:
        print(json.dumps(out))
    else:
        for k, v in out.items():
            if not isinstance(v, dict):
                print(f"{k:36s} {v}")
        for name, page in (out.get("pages") or {}).items():  # the class section's pages
            shown = " ".join(f"{k}={v}" for k, v in page.items() if not isinstance(v, list))
            print(f"{'class ' + name:36s} {shown}")
    return 0


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "bench", help="benchmarks: speed ratios against baselines measured in the same run"
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--quick", action="store_true", help="tiny sizes (a smoke test, not a measurement)")
    p.add_argument(
        "--only",
        default=None,
        help=f"comma-separated sections: {','.join(SECTIONS)} (default: all but class and umap_server)",
    )
    p.add_argument(
        "--sessions",
        type=int,
        default=None,
        help="class: browser sessions opening each page at once (default 8; 2 with --quick)",
    )
    p.set_defaults(func=run)
