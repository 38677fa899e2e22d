"""Train every AO-FL variant on the real text views of IEMOCAP and MELD, 5 seeds, with the settings
chosen by cross-validation (`python -m aofl tune`), via the CLI.

* Settings: `baseline` takes the best trial of ``results/studies/<dataset>-baseline.json``; every
  other variant takes ``<dataset>-full.json``'s (the ablations are full's setting with one part off).
  The runs train on the train split for the chosen trial's `final_epochs` (the median of its folds'
  best epochs) and keep the last epoch (``--select last``): neither valid nor test chooses anything.
  ``--settings-from iemocap`` lets a dataset without a finished study use IEMOCAP's chosen settings;
  its runs then early-stop on their own valid split (MELD: dev), since an epoch count does not
  transfer between datasets.
* Seed 0 is trained straight into ``checkpoints/<dataset>/<variant>/`` with ``--half`` (the
  shipped checkpoint; its metadata holds the exact command). Other seeds go to
  ``/tmp/aofl_runs/<dataset>/<variant>/s<seed>/``.
* After training, ``python -m aofl infer CKPT --split test`` scores the stored file (fp16 for
  seed 0, so the numbers are those of the shipped weights) and the per-utterance predictions
  are kept as ``results/preds/<dataset>_<variant>_s<seed>.csv`` (utterance_id,label_id,prediction_id).
* Metrics go to ``results/<dataset>_runs.json`` keyed ``<variant>/s<seed>``.
* Resumable: a run with an entry in the runs file and its predictions file is skipped; a run
  whose checkpoint exists is not retrained (only inferred). At most ``--jobs`` (2) processes at
  once, each with AOFL_THREADS=1. ``--stop-after MIN`` starts no new job after that many minutes.
* ``--report`` writes results/summary.json, results/real_summary.json and results/tables.md.

    AOFL_DATA_DIR=/work/shared/data .venv/bin/python tools/run_real_experiments.py \
        [--datasets iemocap meld] [--variants ...] [--seeds 0 1 2 3 4] [--jobs 2] [--settings-from iemocap]
"""

from __future__ import annotations

import argparse
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
ORDER = [
    "full",
    "baseline",
    "no_aao",
    "no_are",
    "no_cen",
    "no_opr",
    "orthogonal",
]  # start order within a tier
DATASETS = ["iemocap", "meld"]
KNOWN = DATASETS + [
    "synthetic"
]  # synthetic: the shipped checkpoints get the same protocol (--datasets synthetic)
STUDIES = ROOT / "results" / "studies"
SEARCH_EPOCHS_CAP = 40


def study_of(dataset: str, variant: str) -> dict:
    """The exported study whose best trial sets this variant's flags (baseline: its own; others: full's)."""
    p = STUDIES / f"{dataset}-{'baseline' if variant == 'baseline' else 'full'}.json"
    if not p.exists():
        raise FileNotFoundError(f"no study {p}; run python -m aofl tune first")
    study = json.loads(p.read_text())
    if not study.get("best"):
        raise ValueError(f"study {p} has no complete trial")
    return study


def settings_flags(dataset: str, variant: str, settings_from: dict[str, str]) -> list[str]:
    """The train flags of a run: the chosen trial's parameters (see the module docstring)."""
    sys.path.insert(0, str(ROOT))
    from aofl.tune import train_args

    source = settings_from.get(dataset, dataset)
    best = study_of(source, variant)["best"]
    if source == dataset:
        return best["train_args"]
    # transferred: the parameters, but early stopping on this dataset's valid split
    args = train_args(best["params"], SEARCH_EPOCHS_CAP)
    i = args.index("--select")
    del args[i : i + 2]
    return args + (["--patience-after-warmup"] if best["params"].get("warmup_epochs") else [])


TMP_ROOT = Path("/tmp/aofl_runs")
_lock = threading.Lock()


def out_dir(dataset: str, variant: str, seed: int) -> Path:
    if seed == 0:
        return Path("checkpoints") / dataset / variant
    return TMP_ROOT / dataset / variant / f"s{seed}"


def train_argv(dataset: str, variant: str, seed: int, extra: list[str]) -> list[str]:
    argv = [
        "train",
        "--data",
        dataset,
        "--variant",
        variant,
        "--seed",
        str(seed),
        "--out",
        str(out_dir(dataset, variant, seed)),
    ]
    if seed == 0:
        argv.append("--half")
    # --recipe defaults: these runs' flags on top of the built-in defaults, as they always trained
    return argv + ["--recipe", "defaults", "--no-progress"] + extra


def priority(jobs):
    def key(j):
        d, v, s = j
        tier = 0 if s == 0 else (1 if v in ("full", "baseline") else 2)
        return (tier, s, ORDER.index(v), KNOWN.index(d))

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


def run_one(job, env, settings_from, log):
    dataset, variant, seed = job
    key = f"{variant}/s{seed}"
    extra = settings_flags(dataset, variant, settings_from)
    ckpt = ROOT / out_dir(dataset, variant, seed) / "model.safetensors"
    entry = {
        "dataset": dataset,
        "variant": variant,
        "seed": seed,
        "checkpoint": str(out_dir(dataset, variant, seed) / "model.safetensors"),
    }
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
        r = subprocess.run(
            [sys.executable, "-m", "aofl", *argv], cwd=ROOT, env=env, capture_output=True, text=True
        )
        if r.returncode != 0:
            log(f"FAILED {dataset} {key}: {r.stderr.strip()[-500:]}")
            claim.unlink(missing_ok=True)
            return
    entry["wall_seconds_train"] = round(time.perf_counter() - t0, 1)
    # metadata of the stored file (command, best epoch, valid metrics) when training was skipped
    sys.path.insert(0, str(ROOT))
    from aofl.store.checkpoint import read_metadata

    meta = read_metadata(ckpt)
    entry["command"] = meta.get("command")
    entry["best_epoch"] = meta.get("best_epoch")
    entry["valid"] = meta.get("metrics", {}).get("valid")
    entry["train_seconds"] = meta.get("train_seconds")
    entry["epochs_run"] = len(meta.get("history") or [])
    # test metrics of the fp32 model at the end of training (before an fp16 save)
    entry["train_test_fp32"] = {
        k: meta.get("metrics", {}).get("test", {}).get(k) for k in ("weighted_f1", "accuracy")
    }
    tmp_csv = TMP_ROOT / "infer" / f"{dataset}_{variant}_s{seed}.csv"
    t1 = time.perf_counter()
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "aofl",
            "infer",
            str(ckpt),
            "--data",
            dataset,
            "--split",
            "test",
            "--out",
            str(tmp_csv),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
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
    log(
        f"done {dataset} {key}: valid WF1 {entry['valid']['weighted_f1']:.4f} test WF1 "
        f"{m['weighted_f1']:.4f} acc {m['accuracy']:.4f}  epochs {entry['epochs_run']} (best {entry['best_epoch']}) "
        f"train {entry['train_seconds']} s"
    )


LABELS = {
    "iemocap": ["happy", "sad", "neutral", "angry", "excited", "frustrated"],
    "meld": ["neutral", "surprise", "fear", "sadness", "joy", "disgust", "anger"],
}


def _study_summary(dataset: str, variant: str) -> dict | None:
    p = STUDIES / f"{dataset}-{variant}.json"
    if not p.exists():
        return None
    st = json.loads(p.read_text())
    return {"n_trials": st["n_trials"], "states": st["states"], "folds": st["folds"], "best": st.get("best")}


def report() -> int:
    """results/summary.json, results/real_summary.json and results/tables.md from the runs files,
    the predictions, the exported studies and reference.json."""
    import numpy as np
    import pandas as pd

    sys.path.insert(0, str(ROOT))
    from aofl.metrics import paired_seed_comparison

    ref_path = ROOT / "results" / "reference.json"
    ref = json.loads(ref_path.read_text()) if ref_path.exists() else {}
    summary, real, md = {}, {}, []
    for d in KNOWN:
        runs = load_runs(d)
        if not runs:
            continue
        summary[d], real[d] = {}, {}
        labels = LABELS.get(d) or list(next(iter(runs.values()))["test"]["per_class_f1"])
        studies = {v: _study_summary(d, v) for v in ("full", "baseline")}
        md.append(f"### {d.upper()} (test split" + (", text views only)\n" if d in DATASETS else ")\n"))
        md.append(
            "| variant | seeds | test WF1 mean ± std | test acc mean ± std | CV WF1 of its setting | "
            "valid WF1 mean | full − variant, mean over seeds [95% CI] | seeds full wins | p (paired t / bootstrap) |"
        )
        md.append("|---|---|---|---|---|---|---|---|---|")
        preds = {}
        for v in VARIANTS:
            for r in (runs[k] for k in sorted(runs) if k.startswith(v + "/")):
                pp = ROOT / r["predictions"]
                if pp.exists():
                    preds[(v, r["seed"])] = pd.read_csv(pp)
        for v in VARIANTS:
            rs = [
                runs[k]
                for k in sorted(runs, key=lambda k: (k.split("/")[0], int(k.split("/s")[1])))
                if k.startswith(v + "/")
            ]
            if not rs:
                md.append(f"| {v} | 0 | not run | | | | | | |")
                continue
            seeds = [r["seed"] for r in rs]
            wf = np.array([r["test"]["weighted_f1"] for r in rs]) * 100
            ac = np.array([r["test"]["accuracy"] for r in rs]) * 100
            va = np.array([r["valid"]["weighted_f1"] for r in rs]) * 100

            def sd(a):
                return f"{a.std(ddof=1):.1f}" if len(a) > 1 else "n/a"

            st = studies["baseline" if v == "baseline" else "full"]
            cv = st["best"]["cv_mean"] if st and st.get("best") and v in ("full", "baseline") else None
            params = st["best"]["params"] if st and st.get("best") else None
            row = {
                "n": len(rs),
                "seeds": seeds,
                "test_wf1_mean": wf.mean(),
                "test_wf1_std": float(wf.std(ddof=1)) if wf.size > 1 else None,
                "test_acc_mean": ac.mean(),
                "test_acc_std": float(ac.std(ddof=1)) if ac.size > 1 else None,
                "valid_wf1_mean": va.mean(),
                "test_wf1_per_seed": wf.round(2).tolist(),
                "per_class_f1": {
                    n: float(np.mean([r["test"]["per_class_f1"][n] for r in rs])) for n in labels
                },
            }
            real[d][v] = {
                "seeds": seeds,
                "test_weighted_f1": [r["test"]["weighted_f1"] for r in rs],
                "cv_weighted_f1": cv,
                "params": params,
                "params_from": None if params is None else ("baseline" if v == "baseline" else "full"),
                "command_seed0": next((r.get("command") for r in rs if r["seed"] == 0), None),
            }
            cmp_txt, wins_txt, p_txt = "", "", ""
            common = [s for s in seeds if ("full", s) in preds and (v, s) in preds]
            if v != "full" and common:
                y = preds[("full", common[0])]["label_id"].to_numpy()
                for s in common:
                    assert (preds[("full", s)]["utterance_id"] == preds[(v, s)]["utterance_id"]).all()
                c = paired_seed_comparison(
                    y,
                    [preds[("full", s)]["prediction_id"].to_numpy() for s in common],
                    [preds[(v, s)]["prediction_id"].to_numpy() for s in common],
                    n_boot=1000,
                )
                row["full_minus_variant"] = c
                cmp_txt = f"{100 * c['difference']:+.1f} [{100 * c['low']:+.1f}, {100 * c['high']:+.1f}]"
                wins_txt = f"{c['wins']}/{c['n_seeds']}"
                tp = "n/a" if c["t_p_value"] is None else f"{c['t_p_value']:.3f}"
                p_txt = f"{tp} / {c['p_bootstrap']:.3f}"
            summary[d][v] = row
            cv_txt = f"{100 * cv:.1f}" if cv is not None else ("(full's setting)" if v != "baseline" else "")
            md.append(
                f"| {v} | {len(rs)} | {wf.mean():.1f} ± {sd(wf)} | {ac.mean():.1f} ± {sd(ac)} | {cv_txt} | "
                f"{va.mean():.1f} | {cmp_txt} | {wins_txt} | {p_txt} |"
            )
        rr = ref.get(d, {})
        for name, label in (
            ("lr", "reference: logistic regression, concatenated views (ours)"),
            ("bigru", "reference: 1-layer bi-GRU + speaker one-hot (ours)"),
        ):
            if name in rr:
                s_ = rr[name]["summary"]
                n_ = s_["test_weighted_f1"]["n"]

                def f(k):
                    return (
                        f"{100 * s_[k]['mean']:.1f} ± {100 * s_[k]['std']:.1f}"
                        if n_ > 1
                        else f"{100 * s_[k]['mean']:.1f} (deterministic)"
                    )

                md.append(
                    f"| {label} | {n_} | {f('test_weighted_f1')} | {f('test_accuracy')} | | "
                    f"{100 * s_['valid_weighted_f1']['mean']:.1f} | | | |"
                )
        anchors = {"iemocap": (64.48, 72.84), "meld": (61.23, 66.74)}.get(d)
        if anchors:
            md.append(
                f"| *published, other features:* MultiEMO text-only (EmoBERTa, test-selected epoch) | | {anchors[0]:.2f} | | | | | | |"
            )
            md.append(
                f"| *published, other features:* MultiEMO full multimodal (test-selected epoch) | | {anchors[1]:.2f} | | | | | | |"
            )
        names = labels
        md.append("")
        md.append("Per-class test F1 (mean over seeds; support in brackets):\n")
        md.append("| variant | " + " | ".join(names) + " |")
        md.append("|---|" + "---|" * len(names))
        sup = None
        if ("full", 0) in preds:
            sup = preds[("full", 0)]["label_id"].value_counts()
        for v in VARIANTS:
            if v in summary[d]:
                pc = summary[d][v]["per_class_f1"]
                md.append(
                    f"| {v} | "
                    + " | ".join(
                        f"{100 * pc[n]:.1f}" + (f" ({int(sup.get(i, 0))})" if sup is not None else "")
                        for i, n in enumerate(names)
                    )
                    + " |"
                )
        for v, st in studies.items():
            if st:
                b = st["best"]
                md.append("")
                md.append(
                    f"Study `{d}-{v}`: {st['n_trials']} trials ({', '.join(f'{k.lower()} {n}' for k, n in st['states'].items())}), "
                    f"{st['folds']} folds; best trial {b['number']}: CV WF1 {100 * b['cv_mean']:.1f} ± {100 * b['cv_std']:.1f} "
                    f"(folds {', '.join(f'{100 * x:.1f}' for x in b['fold_scores'])}), final epochs {b['final_epochs']}."
                )
        times = [r["train_seconds"] for r in runs.values() if r.get("train_seconds")]
        eps = [r["epochs_run"] for r in runs.values() if r.get("epochs_run")]
        if times:
            md.append("")
            md.append(
                f"Training time per run ({d}, 1 thread, shared 2-core machine): median {np.median(times):.0f} s, "
                f"range {min(times):.0f}-{max(times):.0f} s; epochs run median {np.median(eps):.0f}."
            )
        md.append("")
    (ROOT / "results" / "summary.json").write_text(json.dumps(summary, indent=1, default=float) + "\n")
    real = {d: v for d, v in real.items() if d in DATASETS}
    (ROOT / "results" / "real_summary.json").write_text(json.dumps(real, indent=1, default=float) + "\n")
    (ROOT / "results" / "tables.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--datasets", nargs="+", default=DATASETS)
    ap.add_argument("--variants", nargs="+", default=VARIANTS)
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    ap.add_argument(
        "--settings-from",
        nargs="*",
        default=[],
        metavar="DATASET=SOURCE",
        help="use another dataset's chosen settings, e.g. meld=iemocap (see the docstring)",
    )
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--stop-after", type=float, default=None, help="start no new job after this many minutes")
    ap.add_argument(
        "--after-pid",
        type=int,
        nargs="*",
        default=[],
        help="wait until these processes have exited before starting (e.g. a run already in flight)",
    )
    ap.add_argument(
        "--report", action="store_true", help="only write results/summary.json and results/tables.md"
    )
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

    settings_from = dict(item.split("=", 1) for item in args.settings_from)
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
            run_one(job, env, settings_from, log)
        except Exception as e:  # keep the other runs going
            log(f"ERROR {job}: {e!r}")

    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        list(pool.map(guarded, jobs))
    log(f"finished in {(time.time() - start) / 60:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
