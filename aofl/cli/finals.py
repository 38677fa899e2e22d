"""`python -m aofl finals --data D --study S --variants ... --seeds ...`: the final runs of a study.

Every arm (a variant, or a mechanism arm such as fixed_alpha) at every seed, trained with the study's
chosen setting, leaves per-run tables under RESULTS/runs/D/ (aofl/finals.py, aofl/runs.py). Run it
again to resume; run it in several processes (or on several machines with one `--storage`) to share
the queue. `--status` only lists what is done and what is left.
"""

from __future__ import annotations

import json
import sys

__all__ = ["add_parser", "run"]


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("finals", help="final runs of a study: arms x seeds, per-run tables, resumable")
    p.add_argument("--data", required=True, help="dataset name (as for train --data)")
    p.add_argument("--study", required=True, help="the split family's study, e.g. iemocap-full")
    p.add_argument(
        "--baseline-study", default=None, help="baseline's study (default: --study with -full -> -baseline)"
    )
    p.add_argument(
        "--variants",
        nargs="+",
        default=["full", "baseline"],
        help="arms: variants (full no_aao no_cen no_are no_opr orthogonal baseline fixed_alpha) and "
        "mechanism arms (alpha_moves orthogonal_recon0 orthogonal_recon_aac)",
    )
    p.add_argument("--seeds", nargs="+", default=["0-4"], help="seeds: 0 1 2 or ranges 0-9")
    p.add_argument(
        "--results-dir", default="results", help="results directory (per-run tables go to RESULTS_DIR/runs)"
    )
    p.add_argument("--studies", default=None, help="where study exports live (default RESULTS_DIR/studies)")
    p.add_argument("--storage", default=None, help="Optuna RDB URL of the job queue (default: WORK/queue.db)")
    p.add_argument("--work", default=None, help="scratch directory (default ~/.cache/aofl/finals/DATA)")
    p.add_argument(
        "--setting",
        default="cv",
        choices=["cv", "defaults", "test-informed"],
        help="how the studies' settings were chosen (recorded in every run)",
    )
    p.add_argument("--max-jobs", type=int, default=None, help="stop after this many runs")
    p.add_argument("--stop-after", type=float, default=None, help="start no new run after this many minutes")
    p.add_argument("--status", action="store_true", help="list done and pending jobs; train nothing")
    p.add_argument("--json", action="store_true")
    p.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    p.add_argument("--threads", type=int, default=1, help="torch threads per process")
    p.set_defaults(func=run)


def run(args) -> int:
    from pathlib import Path

    from ..finals import FinalsSpec, pending_jobs, work
    from .common import parse_seeds

    spec = FinalsSpec(
        data=args.data,
        study=args.study,
        arms=list(dict.fromkeys(args.variants)),
        seeds=parse_seeds(args.seeds),
        results=Path(args.results_dir),
        studies=args.studies,
        baseline_study=args.baseline_study,
        storage=args.storage,
        work=args.work,
        setting=args.setting,
        threads=args.threads,
        device=args.device,
    )
    if args.status:
        left = pending_jobs(spec)
        status = {
            "data": spec.data,
            "study": spec.study,
            "jobs": len(spec.jobs()),
            "done": len(spec.jobs()) - len(left),
            "pending": [f"{a}/s{s}" for a, s in left],
        }
        print(json.dumps(status, indent=2) if args.json else f"{status['done']}/{status['jobs']} done")
        return 0
    from . import main as train_command  # `python -m aofl train ...`, run in this process

    finished = work(
        spec,
        train_command,
        max_jobs=args.max_jobs,
        stop_after_s=None if args.stop_after is None else 60 * args.stop_after,
        log=lambda msg: print(msg, file=sys.stderr),
    )
    if args.json:
        print(json.dumps({"finished": finished, "pending": len(pending_jobs(spec))}, indent=2))
    return 0
