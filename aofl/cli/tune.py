"""`python -m aofl tune --data DATA --variant V --trials N --folds K --out DIR [--storage URL] [--json]`.

An Optuna study over grouped k-fold cross-validation (aofl/tune.py). `--workers W` runs W processes
on the same study, one torch thread each; a killed search continues when the command is run again.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

__all__ = ["add_parser", "run"]


def add_parser(subparsers) -> None:
    from ..model import AOFLConfig
    from ..settings import add_flags
    from ..train import TrainConfig
    from ..tune import CURVE_EPOCHS, PATIENCE, RULES, SEARCH_EPOCHS
    from .common import add_data_args

    p = subparsers.add_parser(
        "tune", help="search hyper-parameters by grouped k-fold cross-validation (Optuna)"
    )
    add_data_args(p)  # --data, --data-seed, --views
    add_flags(p, AOFLConfig, only=["variant"])  # train's --variant, from the same field
    p.add_argument(
        "--trials", type=int, default=20, help="finished trials (complete or pruned) the study should hold"
    )
    p.add_argument(
        "--folds",
        type=int,
        default=None,
        help="folds (default: IEMOCAP 4 = leave one session out over Sessions 1-4; others 5)",
    )
    p.add_argument("--out", required=True, help="study directory (study.db, per-fold results)")
    p.add_argument("--storage", default=None, help="any Optuna RDB URL (default: sqlite:///OUT/study.db)")
    p.add_argument("--seed", type=int, default=0, help="training seed of every fold run, and the sampler's")
    p.add_argument(
        "--epochs",
        type=int,
        default=None,
        help=f"the cap of every fold's run (default: curve rule {CURVE_EPOCHS}, every fold trains all of "
        f"them; fold_best rule {SEARCH_EPOCHS}, early stopping with patience {PATIENCE} ends most runs sooner)",
    )
    p.add_argument(
        "--rule",
        default="curve",
        choices=RULES,
        help="how a trial is scored: curve (default) = the fold-mean held-out WF1 curve at one common epoch, "
        "which the final runs then train for, no pruning; fold_best = each fold's own best epoch, median "
        "pruning (the studies of issue #13, named without the -curve suffix)",
    )
    p.add_argument("--workers", type=int, default=1, help="processes on this study (one torch thread each)")
    p.add_argument("--worker-index", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument(
        "--export",
        default=None,
        help="where to write every trial as JSON (default results/studies/<study>.json, <study> = <data>[+<views>]-<variant>; "
        "'-' for none)",
    )
    p.add_argument(
        "--start-from",
        action="append",
        default=[],
        metavar="EXPORT_JSON",
        help="seed a new study with the best setting of an exported study (e.g. another dataset's "
        "results/studies/<data>-<variant>.json); repeatable",
    )
    p.add_argument(
        "--report-only", action="store_true", help="run no trial: print and export the study as it is"
    )
    p.add_argument(
        "--grace-period",
        type=int,
        default=180,
        help="seconds without a heartbeat after which a running trial counts as failed and is retried",
    )
    add_flags(p, TrainConfig, only=["progress"])  # --no-progress
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--device", default="cpu", help="cpu (default), cuda or auto")
    p.set_defaults(func=run)


def _load(args):  # a seam the tests replace with a tiny corpus
    from .common import load_data

    return load_data(args)


def run(args) -> int:
    from ..cv import default_folds
    from ..device import configure_runtime, resolve_device
    from ..tune import (
        CURVE_EPOCHS,
        SEARCH_EPOCHS,
        TuneSpec,
        export_path,
        optimize,
        start_params,
        study_report,
        worker_env,
    )

    configure_runtime(1)  # one torch thread per worker
    device = str(resolve_device(args.device))
    dataset = _load(args)
    folds = args.folds or default_folds(dataset.name)
    if args.trials < 1:
        raise ValueError("--trials must be at least 1")
    start = []
    for path in args.start_from:
        try:
            start.append(start_params(json.loads(Path(path).read_text()), args.variant))
        except (OSError, json.JSONDecodeError) as e:
            raise ValueError(f"--start-from {path}: cannot read the study export ({e})") from e
    from ..data import DatasetName

    # `--data iemocap+sentence+tuned` is `--data iemocap --views sentence tuned`: one study either way
    named = DatasetName.parse(args.data)
    spec = TuneSpec(
        data=named.plain,
        variant=args.variant,
        trials=args.trials,
        folds=folds,
        out=Path(args.out),
        storage=args.storage,
        seed=args.seed,
        worker=args.worker_index,
        epochs=args.epochs or (CURVE_EPOCHS if args.rule == "curve" else SEARCH_EPOCHS),
        start_from=tuple(start),
        views=tuple(args.views or named.views),
        rule=args.rule,
    )
    if not args.report_only:
        procs = []
        if args.workers > 1 and args.worker_index == 0:
            from ..tune import open_study

            open_study(spec, args.grace_period)  # created (and seeded) once, before the other workers load it
            base = [
                sys.executable,
                "-m",
                "aofl",
                "tune",
                "--data",
                args.data,
                "--data-seed",
                str(args.data_seed),
                "--variant",
                args.variant,
                "--trials",
                str(args.trials),
                "--folds",
                str(folds),
                "--out",
                args.out,
                "--seed",
                str(args.seed),
                "--export",
                "-",
                "--workers",
                "1",
                "--grace-period",
                str(args.grace_period),
                "--device",
                args.device,
                "--epochs",
                str(spec.epochs),
                "--rule",
                args.rule,
            ]
            if args.views:
                base += ["--views", *args.views]
            if args.storage:
                base += ["--storage", args.storage]
            if args.no_progress:
                base.append("--no-progress")
            for w in range(1, args.workers):
                procs.append(subprocess.Popen(base + ["--worker-index", str(w)], env=worker_env()))
        try:
            optimize(
                spec, dataset, progress=not args.no_progress, grace_period=args.grace_period, device=device
            )
        finally:
            codes = [p.wait() for p in procs]
        if any(codes):
            print(f"warning: a worker exited with {codes}", file=sys.stderr)
    report = study_report(spec, dataset)
    if args.export != "-" and args.worker_index == 0:
        from ..io.atomic import atomic_write_text

        path = Path(args.export) if args.export else export_path(spec)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps(report, indent=1))
        report["exported_to"] = str(path)
    if args.json:
        print(
            json.dumps(
                report if args.report_only else {k: v for k, v in report.items() if k != "trials"}, indent=2
            )
        )
        return 0
    b = report["best"]
    print(f"study {report['study']}: {report['n_trials']} trials {report['states']}, {folds} folds")
    print(f"score rule: {report['score_rule']}")
    if b is None:
        print("no complete trial yet")
    else:
        print(
            f"best trial {b['number']}: CV weighted F1 {b['cv_mean']:.4f} +- {b['cv_std']:.4f} "
            f"(folds {', '.join(f'{s:.3f}' for s in b['fold_scores'])}; best epochs {b['best_epochs']})"
        )
        for k, v in b["params"].items():
            print(f"  {k} = {v}")
        print(
            f"final runs: python -m aofl train --data {args.data} --variant {args.variant} --seed 0 --out OUT "
            + " ".join(b["train_args"])
        )
    return 0
