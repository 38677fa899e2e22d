"""Final runs of the studies searched on other text views (e.g. with `tuned`), resumable, then a report.

For each variant, the chosen setting of `results/studies/<data>+<views>-<variant>.json` (cross-validated
on the training dialogues only) is trained on the whole train split for each seed, its test split is
scored once (`python -m aofl infer`), the predictions go to `results/preds/<data>+<views>_<variant>_s<seed>.csv`
and a line to `results/view_search_runs.json`. A finished run is skipped on restart. `--report` prints the
per-variant table and the paired comparison of `full` against every other variant (bootstrap over test
utterances and paired t-test over seeds, `aofl.metrics.paired_seed_comparison`) and writes
`results/view_search_summary.json`, which the app's Evidence page and `python -m aofl results` read.

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
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "results"
OUT = RESULTS / "view_search_runs.json"
VIEWS = ["sentence", "lexicon", "tfidf", "tuned"]
_lock = threading.Lock()


def tag(data: str, views: list[str]) -> str:
    return "+".join([data, *views])


def chosen_args(data: str, views: list[str], variant: str) -> tuple[list[str], dict]:
    """The study's final-run flags (they end with --views ...) and its best trial."""
    path = RESULTS / "studies" / f"{tag(data, views)}-{variant}.json"
    study = json.loads(path.read_text())
    if not study.get("best"):
        raise SystemExit(f"{path} has no complete trial yet")
    return list(study["best"]["train_args"]), study["best"]


def preds_path(data: str, views: list[str], variant: str, seed: int) -> Path:
    return RESULTS / "preds" / f"{tag(data, views)}_{variant}_s{seed}.csv"


def _read() -> dict:
    return json.loads(OUT.read_text()) if OUT.exists() else {}


def _save(key: str, entry: dict) -> None:
    with _lock:  # two runs finish at once: re-read, add, write
        done = _read()
        done[key] = entry
        OUT.write_text(json.dumps(done, indent=1) + "\n")


def one_run(data: str, views: list[str], variant: str, seed: int, runs_dir: Path, log) -> None:
    key = f"{tag(data, views)}/{variant}/s{seed}"
    if key in _read() and preds_path(data, views, variant, seed).exists():
        return
    flags, best = chosen_args(data, views, variant)
    out = runs_dir / tag(data, views) / variant / f"s{seed}"
    train = ["-m", "aofl", "train", "--data", data, "--variant", variant, "--seed", str(seed)]
    train += ["--out", str(out), *flags, "--no-progress", "--json"]
    env = {**os.environ, "AOFL_THREADS": "1"}
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, *train], cwd=ROOT, env=env, capture_output=True, text=True)
    if r.returncode:
        raise SystemExit(f"failed: python {shlex.join(train)}\n{r.stderr[-2000:]}")
    summary = json.loads(r.stdout[r.stdout.index("{") :])
    seconds = round(time.perf_counter() - t0, 1)
    pp = preds_path(data, views, variant, seed)
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


def report(data: str, views: list[str], variants: list[str], as_json: bool) -> int:
    import numpy as np
    import pandas as pd

    from aofl.metrics import paired_seed_comparison, weighted_f1

    done = _read()
    runs: dict = {}
    for key, e in done.items():
        t, variant, seed = key.split("/")
        if t == tag(data, views) and variant in variants:
            runs.setdefault(variant, {})[int(seed[1:])] = e
    rows = {}
    for v, by_seed in runs.items():
        seeds = sorted(by_seed)
        f1 = [100 * by_seed[s]["test_weighted_f1"] for s in seeds]
        rows[v] = {
            "seeds": seeds,
            "test_wf1_per_seed": [round(x, 2) for x in f1],
            "test_wf1_mean": statistics.fmean(f1),
            "test_wf1_std": statistics.stdev(f1) if len(f1) > 1 else 0.0,
            "cv_wf1": 100 * by_seed[seeds[0]]["cv_weighted_f1"],
            "valid_wf1_mean": statistics.fmean(100 * by_seed[s]["valid_weighted_f1"] for s in seeds),
        }
    if "full" in runs:
        for v in rows:
            if v == "full":
                continue
            common = sorted(set(runs["full"]) & set(runs[v]))
            if not common:
                continue
            pa = [pd.read_csv(ROOT / runs["full"][s]["predictions"]) for s in common]
            pb = [pd.read_csv(ROOT / runs[v][s]["predictions"]) for s in common]
            y = pa[0]["label_id"].to_numpy()
            for a, b in zip(pa, pb):
                assert (a["utterance_id"] == pb[0]["utterance_id"]).all() and (b["label_id"] == y).all()
            c = paired_seed_comparison(
                y, [a["prediction_id"].to_numpy() for a in pa], [b["prediction_id"].to_numpy() for b in pb]
            )
            rows[v]["full_minus"] = {
                k: c[k] for k in ("difference", "low", "high", "wins", "t_p_value", "p_bootstrap")
            }
            # the stored predictions reproduce the stored scores (nothing rescored differently)
            for s, a in zip(common, pa):
                assert np.isclose(
                    weighted_f1(y, a["prediction_id"].to_numpy()),
                    runs["full"][s]["test_weighted_f1"],
                    atol=1e-6,
                )
    # the Evidence page's input (aofl.evidence): real_summary.json's shape, keyed by dataset+views
    summary_path = RESULTS / "view_search_summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
    summary[tag(data, views)] = {
        v: {
            "seeds": sorted(runs[v]),
            "test_weighted_f1": [runs[v][s]["test_weighted_f1"] for s in sorted(runs[v])],
            "cv_weighted_f1": runs[v][min(runs[v])]["cv_weighted_f1"],
            "params": chosen_args(data, views, v)[1]["params"],
            "params_from": f"{tag(data, views)}-{v}",
            "command_seed0": runs[v].get(0, {}).get("command"),
        }
        for v in runs
    }
    summary_path.write_text(json.dumps(summary, indent=1) + "\n")
    if as_json:
        print(json.dumps(rows, indent=1))
        return 0
    print(f"{tag(data, views)}: test weighted F1 (%), chosen settings of the {tag(data, views)} studies")
    for v, r in rows.items():
        line = (
            f"  {v:10s} {r['test_wf1_mean']:.1f} +- {r['test_wf1_std']:.1f} over seeds {r['seeds']} "
            f"{r['test_wf1_per_seed']} (CV {r['cv_wf1']:.1f}, valid {r['valid_wf1_mean']:.1f})"
        )
        if "full_minus" in r:
            c = r["full_minus"]
            line += (
                f"; full - {v} {100 * c['difference']:+.1f} [{100 * c['low']:+.1f}, {100 * c['high']:+.1f}], "
                f"full wins {c['wins']}/{len(r['seeds'])}, p t {c['t_p_value']:.3f} / boot {c['p_bootstrap']:.3f}"
            )
        print(line)
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default="iemocap")
    ap.add_argument("--views", nargs="+", default=VIEWS)
    ap.add_argument("--variants", nargs="+", default=["full", "baseline"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    ap.add_argument("--workers", type=int, default=2, help="runs at a time (one torch thread each)")
    ap.add_argument("--runs-dir", default="/tmp/aofl_view_runs")
    ap.add_argument("--report", action="store_true", help="run nothing: print the table")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if args.report:
        return report(args.data, args.views, args.variants, args.json)
    jobs = [(v, s) for s in args.seeds for v in args.variants]
    with ThreadPoolExecutor(args.workers) as pool:
        futures = [
            pool.submit(one_run, args.data, args.views, v, s, Path(args.runs_dir), sys.stderr)
            for v, s in jobs
        ]
        for f in futures:
            f.result()
    return report(args.data, args.views, args.variants, args.json)


if __name__ == "__main__":
    sys.exit(main())
