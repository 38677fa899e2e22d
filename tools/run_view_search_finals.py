"""Final runs of the studies searched on other text views (e.g. with `tuned`), resumable, then a report.

For each variant, the chosen setting of `results/studies/<data>+<views>-<variant>.json` (cross-validated
on the training dialogues only) is trained on the whole train split for each seed, its test split is
scored once (`python -m aofl infer`), the predictions go to `results/preds/<data>+<views>_<variant>_s<seed>.csv`
and a line to `results/view_search_runs.json`. A finished run is skipped on restart. `--report` writes
`results/view_search_summary.json`, which the app's Evidence page and `python -m aofl results` read, and
prints the latter's tables: each arm per seed and `--reference` (default `full`) against every other arm,
paired by seed (bootstrap over test utterances and t-test over seeds).

    AOFL_DATA_DIR=/work/shared/data python tools/run_view_search_finals.py --data iemocap --workers 2
    python tools/run_view_search_finals.py --data iemocap --report
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "results"
OUT = RESULTS / "view_search_runs.json"
VIEWS = ["sentence", "lexicon", "tfidf", "tuned"]
_lock = threading.Lock()


def tag(data: str, views: list[str]) -> str:
    """The dataset's name with its views, as studies, predictions and the Evidence page name it."""
    from aofl.data import DatasetName

    return str(DatasetName.from_parts(data, views))


@dataclass(frozen=True)
class Arm:
    """One row of the table: `variant` trained with the best setting of the study `study`, for that
    study's final epoch count or for `epochs` (a diagnostic, named as such in its label)."""

    label: str
    variant: str
    study: str
    epochs: int | None = None


def parse_arm(text: str) -> Arm:
    """LABEL=VARIANT:STUDY[:EPOCHS], e.g. full@3views=full:iemocap-full"""
    label, _, rest = text.partition("=")
    parts = rest.split(":")
    if not label or len(parts) not in (2, 3):
        raise SystemExit(f"--arm {text!r}: expected LABEL=VARIANT:STUDY[:EPOCHS]")
    return Arm(label, parts[0], parts[1], int(parts[2]) if len(parts) == 3 else None)


def default_arms(data: str, views: list[str], variants: list[str]) -> list[Arm]:
    from aofl.data.names import study_name

    return [Arm(v, v, study_name(tag(data, views), v)) for v in variants]


def chosen_args(arm: Arm, views: list[str]) -> tuple[list[str], dict]:
    """The study's final-run flags (with --views, and the epoch override) and its best trial."""
    path = RESULTS / "studies" / f"{arm.study}.json"
    study = json.loads(path.read_text())
    if not study.get("best"):
        raise SystemExit(f"{path} has no complete trial yet")
    flags = list(study["best"]["train_args"])
    if "--views" in flags:  # a study on these views; another study's setting gets them added
        flags = flags[: flags.index("--views")]
    if arm.epochs is not None:
        flags[flags.index("--epochs") + 1] = str(arm.epochs)
    return [*flags, "--views", *views], study["best"]


def cv_on_these_views(data: str, views: list[str], arm: Arm) -> float | None:
    """The CV score of the arm's setting on *these* views: from the views' own study (where a study
    seeded with another study's best ran that setting too), not the other study's CV on its views."""
    path = RESULTS / "studies" / f"{tag(data, views)}-{arm.variant}.json"
    if arm.epochs is not None or not path.exists():
        return None
    params = chosen_args(arm, views)[1]["params"]
    for t in json.loads(path.read_text())["trials"]:
        if t["state"] == "COMPLETE" and t["params"] == params:
            return t["value"]
    return None


def preds_path(data: str, views: list[str], variant: str, seed: int) -> Path:
    return RESULTS / "preds" / f"{tag(data, views)}_{variant}_s{seed}.csv"


def _read() -> dict:
    return json.loads(OUT.read_text()) if OUT.exists() else {}


def _save(key: str, entry: dict) -> None:
    with _lock:  # two runs finish at once: re-read, add, write
        done = _read()
        done[key] = entry
        OUT.write_text(json.dumps(done, indent=1) + "\n")


def one_run(data: str, views: list[str], arm: Arm, seed: int, runs_dir: Path, log) -> None:
    key = f"{tag(data, views)}/{arm.label}/s{seed}"
    if key in _read() and preds_path(data, views, arm.label, seed).exists():
        return
    flags, best = chosen_args(arm, views)
    out = runs_dir / tag(data, views) / arm.label / f"s{seed}"
    train = ["-m", "aofl", "train", "--data", data, "--variant", arm.variant, "--seed", str(seed)]
    # --recipe defaults: the study's flags on top of the built-in defaults, as these runs always trained
    train += ["--out", str(out), "--recipe", "defaults", *flags, "--no-progress", "--json"]
    env = {**os.environ, "AOFL_THREADS": "1"}
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, *train], cwd=ROOT, env=env, capture_output=True, text=True)
    if r.returncode:
        raise SystemExit(f"failed: python {shlex.join(train)}\n{r.stderr[-2000:]}")
    summary = json.loads(r.stdout[r.stdout.index("{") :])
    seconds = round(time.perf_counter() - t0, 1)
    pp = preds_path(data, views, arm.label, seed)
    pp.parent.mkdir(parents=True, exist_ok=True)
    csv = out / "test_predictions.csv"
    infer = ["-m", "aofl", "infer", str(out / "model.safetensors"), "--data", data, "--views", *views]
    infer += ["--split", "test", "--out", str(csv)]
    r = subprocess.run([sys.executable, *infer], cwd=ROOT, env=env, capture_output=True, text=True)
    if r.returncode:
        raise SystemExit(f"failed: python {shlex.join(infer)}\n{r.stderr[-2000:]}")
    import pandas as pd

    t = pd.read_csv(csv)
    t[t["label_id"] >= 0][["utterance_id", "label_id", "prediction_id"]].to_csv(pp, index=False)
    entry = {
        "command": "python " + shlex.join(train),
        "variant": arm.variant,
        "study": arm.study,
        "study_trial": best["number"],
        "cv_weighted_f1": best["cv_mean"],
        "valid_weighted_f1": summary["valid"]["weighted_f1"],
        "test_weighted_f1": summary["test"]["weighted_f1"],
        "test_accuracy": summary["test"]["accuracy"],
        "train_seconds": seconds,
        "predictions": str(pp.relative_to(ROOT)),
    }
    _save(key, entry)
    print(
        f"{key}: test WF1 {entry['test_weighted_f1']:.4f} (valid {entry['valid_weighted_f1']:.4f}), {seconds} s",
        file=log,
        flush=True,
    )


def report(data: str, views: list[str], arms: list[Arm], as_json: bool, reference: str = "full") -> int:
    """Write results/view_search_summary.json, print each arm's setting and valid mean, then the
    tables of `python -m aofl results` (aofl.evidence: seeds, reference - arm paired by seed)."""
    import numpy as np
    import pandas as pd

    from aofl.cli import main as aofl_main
    from aofl.metrics import weighted_f1

    name = tag(data, views)
    by_label = {a.label: a for a in arms}
    runs: dict = {}
    for key, e in _read().items():
        t, label, seed = key.split("/")
        if t == name and label in by_label:
            runs.setdefault(label, {})[int(seed[1:])] = e
    for label, by_seed in runs.items():  # the kept predictions reproduce the stored scores
        for e in by_seed.values():
            p = pd.read_csv(ROOT / e["predictions"])
            f1 = weighted_f1(p["label_id"].to_numpy(), p["prediction_id"].to_numpy())
            assert np.isclose(f1, e["test_weighted_f1"], atol=1e-6), (label, e["predictions"])
    # the Evidence page's input (aofl.evidence): real_summary.json's shape, keyed by dataset+views
    summary_path = RESULTS / "view_search_summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
    summary[name] = summary.get(name, {}) | {
        v: {
            "seeds": sorted(runs[v]),
            "test_weighted_f1": [runs[v][s]["test_weighted_f1"] for s in sorted(runs[v])],
            "cv_weighted_f1": cv_on_these_views(data, views, by_label[v]),
            "params": chosen_args(by_label[v], views)[1]["params"],
            "params_from": by_label[v].study
            + (f" ({by_label[v].epochs} epochs)" if by_label[v].epochs is not None else ""),
            "command_seed0": runs[v].get(0, {}).get("command"),
        }
        for v in runs
    }
    summary_path.write_text(json.dumps(summary, indent=1) + "\n")
    if not as_json:
        print(f"{name}: each arm is LABEL = VARIANT with the setting of STUDY; valid WF1 mean over its seeds")
        for v, by_seed in runs.items():
            a = by_label[v]
            valid = statistics.fmean(100 * e["valid_weighted_f1"] for e in by_seed.values())
            print(
                f"  {v} = {a.variant} of {a.study}{f' at {a.epochs} epochs' if a.epochs else ''}: valid {valid:.1f}"
            )
        print()
    argv = ["results", "--data", name, "--reference", reference, "--results-dir", str(RESULTS)]
    return aofl_main(argv + (["--json"] if as_json else []))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default="iemocap")
    ap.add_argument("--views", nargs="+", default=VIEWS)
    ap.add_argument(
        "--variants", nargs="+", default=["full", "baseline"], help="arms: VARIANT of the views' own study"
    )
    ap.add_argument(
        "--arm",
        action="append",
        default=[],
        metavar="LABEL=VARIANT:STUDY[:EPOCHS]",
        help="an extra arm: VARIANT with the best setting of results/studies/STUDY.json (e.g. a study on other "
        "views), optionally for EPOCHS epochs; repeatable",
    )
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    ap.add_argument("--workers", type=int, default=2, help="runs at a time (one torch thread each)")
    ap.add_argument("--runs-dir", default="/tmp/aofl_view_runs")
    ap.add_argument("--report", action="store_true", help="run nothing: print the table")
    ap.add_argument(
        "--reference", default="full", help="the arm every other arm is compared with, paired by seed"
    )
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if tag(args.data, args.views) == args.data:  # its files would be the default views' own
        raise SystemExit("these are the default views: their runs are tools/run_real_experiments.py's")
    arms = default_arms(args.data, args.views, args.variants) + [parse_arm(a) for a in args.arm]
    if args.report:
        return report(args.data, args.views, arms, args.json, args.reference)
    jobs = [(a, s) for s in args.seeds for a in arms]
    with ThreadPoolExecutor(args.workers) as pool:
        futures = [
            pool.submit(one_run, args.data, args.views, a, s, Path(args.runs_dir), sys.stderr)
            for a, s in jobs
        ]
        for f in futures:
            f.result()
    return report(args.data, args.views, arms, args.json, args.reference)


if __name__ == "__main__":
    sys.exit(main())
