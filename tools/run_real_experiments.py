"""Train every AO-FL variant on the real text views of IEMOCAP and MELD, 3 seeds, via the CLI.

* Seed 0 is trained straight into ``checkpoints/<dataset>/<variant>/`` with ``--half`` (the
  shipped checkpoint; its metadata holds the exact command). Seeds 1 and 2 go to
  ``/tmp/aofl_runs/<dataset>/<variant>/s<seed>/``.
* After training, ``python -m aofl infer CKPT --split test`` scores the stored file (fp16 for
  seed 0, so the numbers are those of the shipped weights) and the per-utterance predictions
  are kept as ``results/preds/<dataset>_<variant>_s<seed>.csv`` (utterance_id,label_id,prediction_id).
* Metrics go to ``results/<dataset>_runs.json`` keyed ``<variant>/s<seed>``.
* Resumable: a run with an entry in the runs file and its predictions file is skipped; a run
  whose checkpoint exists is not retrained (only inferred). At most ``--jobs`` (2) processes at
  once, each with AOFL_THREADS=1. Jobs start in priority order: seed 0 of every variant, then
  seeds 1-2 of full and baseline, then the rest (order: ORDER). ``--stop-after MIN`` starts no new job after
  that many minutes.

Model selection inside each run is the CLI's: the epoch with the best validation weighted F1
(IEMOCAP: the 12 valid dialogues; MELD: dev). The test split is never used to choose anything.

    AOFL_DATA_DIR=/work/shared/data .venv/bin/python tools/run_real_experiments.py \
        [--datasets iemocap meld] [--variants ...] [--seeds 0 1 2] [--jobs 2] [--stop-after 60]
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import shlex
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = ["full", "no_aao", "no_cen", "no_are", "no_opr", "orthogonal", "baseline"]
ORDER = ["full", "baseline", "no_aao", "no_are", "no_cen", "no_opr", "orthogonal"]  # start order within a tier
DATASETS = ["iemocap", "meld"]
# Flags chosen on the validation split (see RESULTS.md, protocol); empty = CLI defaults.
EXTRA_FLAGS: dict[str, list[str]] = {"iemocap": ["--class-weights"], "meld": []}
TMP_ROOT = Path("/tmp/aofl_runs")
_lock = threading.Lock()


def out_dir(dataset: str, variant: str, seed: int) -> Path:
    if seed == 0:
        return Path("checkpoints") / dataset / variant
    return TMP_ROOT / dataset / variant / f"s{seed}"


def train_argv(dataset: str, variant: str, seed: int, extra: list[str]) -> list[str]:
    argv = ["train", "--data", dataset, "--variant", variant, "--seed", str(seed),
            "--out", str(out_dir(dataset, variant, seed))]
    if seed == 0:
        argv.append("--half")
    return argv + ["--no-progress"] + extra


def priority(jobs):
    def key(j):
        d, v, s = j
        tier = 0 if s == 0 else (1 if v in ("full", "baseline") else 2)
        return (tier, s, ORDER.index(v), DATASETS.index(d))
    return sorted(jobs, key=key)


def runs_path(dataset: str) -> Path:
    return ROOT / "results" / f"{dataset}_runs.json"


def preds_path(dataset: str, variant: str, seed: int) -> Path:
    return ROOT / "results" / "preds" / f"{dataset}_{variant}_s{seed}.csv"


def load_runs(dataset: str) -> dict:
    p = runs_path(dataset)
    return json.loads(p.read_text()) if p.exists() else {}


def save_entry(dataset: str, key: str, entry: dict) -> None:
    with _lock:
        runs = load_runs(dataset)
        runs[key] = entry
        p = runs_path(dataset)
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_suffix(".tmp")
        tmp.write_text(json.dumps(dict(sorted(runs.items())), indent=1) + "\n")
        tmp.replace(p)


def run_one(job, env, extra_for, log):
    dataset, variant, seed = job
    key = f"{variant}/s{seed}"
    extra = extra_for[dataset]
    ckpt = ROOT / out_dir(dataset, variant, seed) / "model.safetensors"
    entry = {"dataset": dataset, "variant": variant, "seed": seed, "checkpoint": str(out_dir(dataset, variant, seed)
                                                                                        / "model.safetensors")}
    t0 = time.perf_counter()
    if not ckpt.exists():
        # claim the run so that a second runner (another process) does not train it too
        claim = TMP_ROOT / "claims" / f"{dataset}_{variant}_s{seed}"
        claim.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.close(os.open(claim, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            log(f"skip {dataset} {key}: claimed by another runner ({claim})")
            return
        argv = train_argv(dataset, variant, seed, extra)
        log(f"start {dataset} {key}: python -m aofl {shlex.join(argv)}")
        r = subprocess.run([sys.executable, "-m", "aofl", *argv], cwd=ROOT, env=env, capture_output=True, text=True)
        if r.returncode != 0:
            log(f"FAILED {dataset} {key}: {r.stderr.strip()[-500:]}")
            claim.unlink(missing_ok=True)
            return
    entry["wall_seconds_train"] = round(time.perf_counter() - t0, 1)
    # metadata of the stored file (command, best epoch, valid metrics) when training was skipped
    sys.path.insert(0, str(ROOT))
    from aofl.checkpoint import read_metadata
    meta = read_metadata(ckpt)
    entry["command"] = meta.get("command")
    entry["best_epoch"] = meta.get("best_epoch")
    entry["valid"] = meta.get("metrics", {}).get("valid")
    entry["train_seconds"] = meta.get("train_seconds")
    entry["epochs_run"] = len(meta.get("history") or [])
    # test metrics of the fp32 model at the end of training (before an fp16 save)
    entry["train_test_fp32"] = {k: meta.get("metrics", {}).get("test", {}).get(k) for k in ("weighted_f1", "accuracy")}
    tmp_csv = TMP_ROOT / "infer" / f"{dataset}_{variant}_s{seed}.csv"
    t1 = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "aofl", "infer", str(ckpt), "--data", dataset, "--split", "test",
                        "--out", str(tmp_csv)], cwd=ROOT, env=env, capture_output=True, text=True)
    if r.returncode != 0:
        log(f"INFER FAILED {dataset} {key}: {r.stderr.strip()[-500:]}")
        return
    entry["wall_seconds_infer"] = round(time.perf_counter() - t1, 1)
    import pandas as pd
    from aofl.metrics import classification_metrics
    t = pd.read_csv(tmp_csv)
    t = t[t["label_id"] >= 0]
    pp = preds_path(dataset, variant, seed)
    pp.parent.mkdir(parents=True, exist_ok=True)
    t[["utterance_id", "label_id", "prediction_id"]].to_csv(pp, index=False)
    m = classification_metrics(t["label_id"].to_numpy(), t["prediction_id"].to_numpy(), meta["label_names"])
    entry["test"] = {k: m[k] for k in ("weighted_f1", "accuracy", "macro_f1", "per_class_f1", "n")}
    entry["predictions"] = str(pp.relative_to(ROOT))
    save_entry(dataset, key, entry)
    log(f"done {dataset} {key}: valid WF1 {entry['valid']['weighted_f1']:.4f} test WF1 "
        f"{m['weighted_f1']:.4f} acc {m['accuracy']:.4f}  epochs {entry['epochs_run']} (best {entry['best_epoch']}) "
        f"train {entry['train_seconds']} s")


LABELS = {"iemocap": ["happy", "sad", "neutral", "angry", "excited", "frustrated"],
          "meld": ["neutral", "surprise", "fear", "sadness", "joy", "disgust", "anger"]}


def report() -> int:
    """results/summary.json and results/tables.md from the runs files, the predictions and reference.json."""
    import numpy as np
    import pandas as pd
    sys.path.insert(0, str(ROOT))
    from aofl.metrics import bootstrap_ci, paired_bootstrap
    ref_path = ROOT / "results" / "reference.json"
    ref = json.loads(ref_path.read_text()) if ref_path.exists() else {}
    summary, md = {}, []
    for d in DATASETS:
        runs = load_runs(d)
        if not runs:
            continue
        summary[d] = {}
        md.append(f"### {d.upper()} (test split, text views only)\n")
        md.append("| variant | n seeds | test WF1 mean ± std | test acc mean ± std | valid WF1 mean | seed-0 test WF1 "
                  "[95% bootstrap CI] | full - variant, seed 0 [95% CI], p |")
        md.append("|---|---|---|---|---|---|---|")
        full0 = preds_path(d, "full", 0)
        full_df = pd.read_csv(full0) if full0.exists() else None
        for v in VARIANTS:
            rs = [runs[k] for k in sorted(runs) if k.startswith(v + "/")]
            if not rs:
                md.append(f"| {v} | 0 | not run | | | | |")
                continue
            wf = np.array([r["test"]["weighted_f1"] for r in rs]) * 100
            ac = np.array([r["test"]["accuracy"] for r in rs]) * 100
            va = np.array([r["valid"]["weighted_f1"] for r in rs]) * 100
            sd = lambda a: f"{a.std(ddof=1):.1f}" if len(a) > 1 else "n/a"
            row = {"n": len(rs), "seeds": [r["seed"] for r in rs], "test_wf1_mean": wf.mean(),
                   "test_wf1_std": float(a.std(ddof=1)) if (a := wf).size > 1 else None,
                   "test_acc_mean": ac.mean(), "test_acc_std": float(ac.std(ddof=1)) if ac.size > 1 else None,
                   "valid_wf1_mean": va.mean(), "test_wf1_per_seed": wf.round(2).tolist()}
            ci_txt, diff_txt = "", ""
            p0 = preds_path(d, v, 0)
            if p0.exists():
                df = pd.read_csv(p0)
                ci = bootstrap_ci(df["label_id"], df["prediction_id"], n_boot=1000, seed=0)
                row["seed0_ci"] = ci
                ci_txt = f"{100 * ci['value']:.1f} [{100 * ci['low']:.1f}, {100 * ci['high']:.1f}]"
                if full_df is not None and v != "full":
                    assert (full_df["utterance_id"] == df["utterance_id"]).all()
                    pb = paired_bootstrap(full_df["label_id"], full_df["prediction_id"], df["prediction_id"],
                                          n_boot=1000, seed=0)
                    row["full_minus_variant_seed0"] = pb
                    diff_txt = (f"{100 * pb['difference']:+.1f} [{100 * pb['low']:+.1f}, {100 * pb['high']:+.1f}], "
                                f"p={pb['p_value']:.3f}")
            summary[d][v] = row
            md.append(f"| {v} | {len(rs)} | {wf.mean():.1f} ± {sd(wf)} | {ac.mean():.1f} ± {sd(ac)} | {va.mean():.1f} | "
                      f"{ci_txt} | {diff_txt} |")
        rr = ref.get(d, {})
        for name, label in (("lr", "reference: logistic regression, concatenated views (ours)"),
                            ("bigru", "reference: 1-layer bi-GRU + speaker one-hot (ours)")):
            if name in rr:
                s_ = rr[name]["summary"]
                n_ = s_["test_weighted_f1"]["n"]
                f = lambda k: (f"{100 * s_[k]['mean']:.1f} ± {100 * s_[k]['std']:.1f}" if n_ > 1
                               else f"{100 * s_[k]['mean']:.1f} (deterministic)")
                md.append(f"| {label} | {n_} | {f('test_weighted_f1')} | {f('test_accuracy')} | "
                          f"{100 * s_['valid_weighted_f1']['mean']:.1f} | | |")
        anchors = {"iemocap": (64.48, 72.84), "meld": (61.23, 66.74)}[d]
        md.append(f"| *published, other features:* MultiEMO text-only (EmoBERTa, test-selected epoch) | | {anchors[0]:.2f} | | | | |")
        md.append(f"| *published, other features:* MultiEMO full multimodal (test-selected epoch) | | {anchors[1]:.2f} | | | | |")
        # per-class F1 of full
        fr = [runs[k] for k in sorted(runs) if k.startswith("full/")]
        if fr:
            names = LABELS[d]
            md.append("")
            md.append(f"Per-class test F1 of `full` (mean over {len(fr)} seed(s); support in brackets):\n")
            md.append("| " + " | ".join(names) + " |")
            md.append("|" + "---|" * len(names))
            df0 = pd.read_csv(preds_path(d, "full", fr[0]["seed"]))
            sup = df0["label_id"].value_counts()
            md.append("| " + " | ".join(
                f"{100 * np.mean([r['test']['per_class_f1'][n] for r in fr]):.1f} ({int(sup.get(i, 0))})"
                for i, n in enumerate(names)) + " |")
            summary[d]["full_per_class_f1"] = {n: float(np.mean([r["test"]["per_class_f1"][n] for r in fr]))
                                               for n in names}
        times = [r["train_seconds"] for r in runs.values() if r.get("train_seconds")]
        eps = [r["epochs_run"] for r in runs.values() if r.get("epochs_run")]
        if times:
            md.append("")
            md.append(f"Training time per run ({d}, 1 thread, shared 2-core machine): median {np.median(times):.0f} s, "
                      f"range {min(times):.0f}-{max(times):.0f} s; epochs run median {np.median(eps):.0f} "
                      f"(early stopping, patience 8, max 30).")
        md.append("")
    (ROOT / "results" / "summary.json").write_text(json.dumps(summary, indent=1, default=float) + "\n")
    (ROOT / "results" / "tables.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--datasets", nargs="+", default=DATASETS)
    ap.add_argument("--variants", nargs="+", default=VARIANTS)
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--stop-after", type=float, default=None, help="start no new job after this many minutes")
    ap.add_argument("--after-pid", type=int, nargs="*", default=[],
                    help="wait until these processes have exited before starting (e.g. a run already in flight)")
    ap.add_argument("--report", action="store_true", help="only write results/summary.json and results/tables.md")
    args = ap.parse_args()
    os.chdir(ROOT)
    if args.report:
        return report()
    for pid in args.after_pid:
        while Path(f"/proc/{pid}").exists():
            time.sleep(5)
    env = dict(os.environ, AOFL_THREADS="1")
    env.setdefault("AOFL_DATA_DIR", "/work/shared/data")
    start = time.time()
    log_file = ROOT / "results" / "run_log.txt"
    log_file.parent.mkdir(parents=True, exist_ok=True)

    def log(msg):
        line = f"{time.strftime('%H:%M:%S')} {msg}"
        print(line, flush=True)
        with _lock, open(log_file, "a") as f:
            f.write(line + "\n")

    jobs = []
    for d in args.datasets:
        done = load_runs(d)
        for v in args.variants:
            for s in args.seeds:
                if f"{v}/s{s}" in done and preds_path(d, v, s).exists():
                    continue
                jobs.append((d, v, s))
    jobs = priority(jobs)
    log(f"{len(jobs)} runs to do: " + ", ".join(f"{d}/{v}/s{s}" for d, v, s in jobs))

    def guarded(job):
        if args.stop_after is not None and time.time() - start > 60 * args.stop_after:
            log(f"skip {job} (past --stop-after)")
            return
        try:
            run_one(job, env, EXTRA_FLAGS, log)
        except Exception as e:  # keep the other runs going
            log(f"ERROR {job}: {e!r}")

    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        list(pool.map(guarded, jobs))
    log(f"finished in {(time.time() - start) / 60:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
