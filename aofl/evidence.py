"""The project's evidence as tables: test scores over seeds, paired differences, the CV studies.

The app's other pages show single checkpoints (seed 0); what supports a claim lives in the results
directory: five seeds per variant (`real_summary.json`, `summary.json`), their test predictions
(`preds/<dataset>_<variant>_s<seed>.csv`) and the exported Optuna studies (`studies/<study>.json`).
These pure functions (pandas, no torch, no Streamlit) read those files for the Evidence page and
`python -m aofl results`. Scores are percentages (weighted F1 x 100); differences are points.

Every function takes the results directory (default: `$AOFL_RESULTS_DIR`, else the repository's
`results/`). A missing file is a FileNotFoundError and a malformed one a ValueError, both naming the
file and what writes it.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import pandas as pd

__all__ = [
    "RESULTS_ENV",
    "REPORT_COMMAND",
    "STUDY_COMMAND",
    "ALPHA",
    "NOISE_RULE",
    "resolve_results_dir",
    "results_stamp",
    "datasets",
    "seed_scores",
    "variant_summary",
    "seed_differences",
    "paired_differences",
    "verdict_lines",
    "list_studies",
    "study_trials",
    "study_best",
]

RESULTS_ENV = "AOFL_RESULTS_DIR"
REPORT_COMMAND = "python tools/run_real_experiments.py --report"
STUDY_COMMAND = "python -m aofl tune --data DATA --variant VARIANT --out DIR --report-only"
ALPHA = 0.05  # a p-value below this counts as beyond that source of noise
NOISE_RULE = (
    f"beyond noise: both the paired t-test over seeds (seed-to-seed noise) and the paired bootstrap over "
    f"test utterances (test-sampling noise) give p < {ALPHA}; suggestive: one of them does; inside noise: "
    f"neither (with no predictions on disk, the t-test alone decides)"
)
BEYOND, SUGGESTIVE, INSIDE, TOO_FEW = "beyond noise", "suggestive", "inside noise", "too few seeds"

_REPO_RESULTS = Path(__file__).resolve().parents[1] / "results"
_REAL_SUMMARY = "real_summary.json"
_SUMMARY = "summary.json"
# the same shape for runs on other text views (key: dataset+views, e.g. iemocap+sentence+lexicon+tfidf+tuned)
_VIEW_SUMMARY = "view_search_summary.json"
VIEW_COMMAND = "python tools/run_view_search_finals.py --data iemocap --report"


# ------------------------------------------------------------------------------------------- files


def resolve_results_dir(results_dir: str | os.PathLike | None = None) -> Path:
    """The results directory: `results_dir`, else $AOFL_RESULTS_DIR, else the repository's results/."""
    if results_dir is not None:
        return Path(results_dir).expanduser()
    env = os.environ.get(RESULTS_ENV)
    return Path(env).expanduser() if env else _REPO_RESULTS


def results_stamp(results_dir: str | os.PathLike | None = None) -> tuple:
    """(file name, mtime_ns, size) of every file these tables read: a cache keyed by it sees a
    rewritten summary or a newly exported study as new data, never as a stale hit."""
    root = resolve_results_dir(results_dir)
    names = [root / _REAL_SUMMARY, root / _SUMMARY, root / _VIEW_SUMMARY]
    for sub, pattern in (("preds", "*.csv"), ("studies", "*.json")):
        names += sorted((root / sub).glob(pattern)) if (root / sub).is_dir() else []
    out = []
    for p in names:
        try:
            st = p.stat()
        except OSError:  # absent, or removed between the glob and the stat
            continue
        out.append((str(p.relative_to(root)), st.st_mtime_ns, st.st_size))
    return tuple(out)


def _read_json(path: Path, made_by: str) -> Any:
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: `{made_by}` writes it")
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{path} is not valid JSON ({e}); `{made_by}` rewrites it") from e


def _real_summary(root: Path) -> dict:
    path = root / _REAL_SUMMARY
    data = _read_json(path, REPORT_COMMAND)
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise ValueError(f"{path} is not {{dataset: {{variant: {{...}}}}}}; `{REPORT_COMMAND}` rewrites it")
    extra = root / _VIEW_SUMMARY  # optional: runs on other views, listed after the default views' datasets
    if extra.is_file():
        more = _read_json(extra, VIEW_COMMAND)
        if not isinstance(more, dict) or not all(isinstance(v, dict) for v in more.values()):
            raise ValueError(
                f"{extra} is not {{dataset: {{variant: {{...}}}}}}; `{VIEW_COMMAND}` rewrites it"
            )
        data = {**data, **{k: v for k, v in more.items() if k not in data}}
    return data


def _variants(dataset: str, root: Path) -> dict:
    """{variant: {seeds, test_weighted_f1, cv_weighted_f1, params, ...}} of one dataset, checked."""
    path = root / _REAL_SUMMARY
    data = _real_summary(root)
    if dataset not in data:
        raise ValueError(f"no dataset {dataset!r} in {path}; it has: {', '.join(data) or 'none'}")
    variants = data[dataset]
    for name, v in variants.items():
        seeds, scores = v.get("seeds"), v.get("test_weighted_f1")
        if not isinstance(seeds, list) or not isinstance(scores, list) or len(seeds) != len(scores):
            raise ValueError(
                f"{path}: {dataset}/{name} needs lists `seeds` and `test_weighted_f1` of the same length"
            )
    return variants


def _summary_rows(dataset: str, root: Path) -> dict:
    """summary.json's rows of a dataset ({} without the file: its columns are extras)."""
    path = root / _SUMMARY
    if not path.is_file():
        return {}
    data = _read_json(path, REPORT_COMMAND)
    return data.get(dataset, {}) if isinstance(data, dict) else {}


def datasets(results_dir: str | os.PathLike | None = None) -> list[str]:
    """The datasets with seed runs, in real_summary.json's order."""
    return list(_real_summary(resolve_results_dir(results_dir)))


# ----------------------------------------------------------------------------------- seed scores


def seed_scores(dataset: str, results_dir: str | os.PathLike | None = None) -> pd.DataFrame:
    """One row per run: variant, seed, test_wf1 (%). Every seed stays visible, not only the mean."""
    rows = [
        {"variant": name, "seed": int(seed), "test_wf1": 100 * float(score)}
        for name, v in _variants(dataset, resolve_results_dir(results_dir)).items()
        for seed, score in zip(v["seeds"], v["test_weighted_f1"])
    ]
    return pd.DataFrame(rows, columns=["variant", "seed", "test_wf1"])


def _std(values: pd.Series) -> float:
    return float(values.std(ddof=1)) if len(values) > 1 else math.nan


def variant_summary(dataset: str, results_dir: str | os.PathLike | None = None) -> pd.DataFrame:
    """One row per variant: n, test WF1 mean and std (ddof 1) over seeds, the CV WF1 of the setting
    it was trained with (only searched variants have one) and where its setting came from; plus test
    accuracy and valid WF1 from summary.json when that file has them."""
    root = resolve_results_dir(results_dir)
    variants = _variants(dataset, root)
    extras = _summary_rows(dataset, root)
    scores = seed_scores(dataset, root)
    rows = []
    for name, v in variants.items():
        s = scores.loc[scores["variant"] == name, "test_wf1"]
        extra = extras.get(name, {})
        cv = v.get("cv_weighted_f1")
        rows.append(
            {
                "variant": name,
                "n": len(s),
                "test_wf1_mean": float(s.mean()) if len(s) else math.nan,
                "test_wf1_std": _std(s),
                "cv_wf1": 100 * float(cv) if cv is not None else math.nan,
                "params_from": v.get("params_from"),
                "test_acc_mean": _number(extra.get("test_acc_mean")),
                "test_acc_std": _number(extra.get("test_acc_std")),
                "valid_wf1_mean": _number(extra.get("valid_wf1_mean")),
            }
        )
    return pd.DataFrame(rows)


def _number(value) -> float:
    return float(value) if isinstance(value, (int, float)) else math.nan


# ---------------------------------------------------------------------------- paired differences


def _reference_variants(dataset: str, reference: str, root: Path) -> dict:
    variants = _variants(dataset, root)
    if reference not in variants:
        raise ValueError(
            f"no variant {reference!r} of {dataset} in {root / _REAL_SUMMARY}; it has: {', '.join(variants)}"
        )
    return variants


def seed_differences(
    dataset: str, reference: str = "full", results_dir: str | os.PathLike | None = None
) -> pd.DataFrame:
    """reference - variant per shared seed (points): variant, seed, difference. Seed s of one variant
    is paired with seed s of the other: same data order and initial draw, so seed noise cancels."""
    root = resolve_results_dir(results_dir)
    _reference_variants(dataset, reference, root)
    scores = seed_scores(dataset, root)
    ref = scores[scores["variant"] == reference].set_index("seed")["test_wf1"]
    rows = [
        {"variant": r.variant, "seed": r.seed, "difference": ref[r.seed] - r.test_wf1}
        for r in scores.itertuples(index=False)
        if r.variant != reference and r.seed in ref.index
    ]
    return pd.DataFrame(rows, columns=["variant", "seed", "difference"])


def _preds_path(root: Path, dataset: str, variant: str, seed: int) -> Path:
    return root / "preds" / f"{dataset}_{variant}_s{seed}.csv"


def _read_preds(path: Path) -> pd.DataFrame:
    try:
        df = pd.read_csv(path, usecols=["utterance_id", "label_id", "prediction_id"])
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as e:
        raise ValueError(f"{path} is not a predictions CSV (utterance_id,label_id,prediction_id): {e}") from e
    return df.set_index("utterance_id")


def _paired_predictions(root: Path, dataset: str, reference: str, variant: str, seeds: list[int]):
    """(labels, reference predictions per seed, variant predictions per seed) on the same utterances,
    or None when a file is missing (then only the per-seed scores are compared)."""
    paths = [
        (_preds_path(root, dataset, reference, s), _preds_path(root, dataset, variant, s)) for s in seeds
    ]
    if not seeds or not all(a.is_file() and b.is_file() for a, b in paths):
        return None
    first = _read_preds(paths[0][0])
    preds_ref, preds_var = [], []
    for a, b in paths:
        fa, fb = _read_preds(a), _read_preds(b)
        for f, p in ((fa, a), (fb, b)):
            if set(f.index) != set(first.index):
                raise ValueError(f"{p} and {paths[0][0]} predict different utterances: they cannot be paired")
        preds_ref.append(fa.loc[first.index, "prediction_id"].to_numpy())
        preds_var.append(fb.loc[first.index, "prediction_id"].to_numpy())
    return first["label_id"].to_numpy(), preds_ref, preds_var


def _verdict(p_values: list[float]) -> str:
    tested = [p for p in p_values if not math.isnan(p)]
    if not tested:
        return TOO_FEW
    passed = sum(p < ALPHA for p in tested)
    return BEYOND if passed == len(tested) else SUGGESTIVE if passed else INSIDE


def _compare(root, dataset, reference, variant, diffs, seeds, n_boot, level) -> dict:
    """One row of `paired_differences`: the t-test over the per-seed differences, replaced by
    `paired_seed_comparison`'s numbers when every predictions file of these seeds is there."""
    from .metrics import paired_t_test

    t_p, t_low, t_high = paired_t_test(diffs, level)
    row = {
        "variant": variant,
        "n_seeds": len(diffs),
        "difference": float(diffs.mean()) if len(diffs) else math.nan,
        "low": t_low,
        "high": t_high,
        "wins": int((diffs > 0).sum()),
        "t_p_value": t_p,
        "bootstrap_p_value": math.nan,
        "method": f"paired t-test over {len(diffs)} seeds; {level:.0%} t-interval (no predictions in preds/)",
    }
    paired = _paired_predictions(root, dataset, reference, variant, seeds)
    if paired is not None:
        from .metrics import paired_seed_comparison

        c = paired_seed_comparison(*paired, n_boot=n_boot, level=level)
        row.update(
            difference=100 * c["difference"],
            low=100 * c["low"],
            high=100 * c["high"],
            wins=c["wins"],
            t_p_value=math.nan if c["t_p_value"] is None else c["t_p_value"],
            bootstrap_p_value=c["p_bootstrap"],
            method=f"aofl.metrics.paired_seed_comparison: paired t-test over {len(seeds)} seeds; "
            f"{level:.0%} interval and p from a paired bootstrap over test utterances ({n_boot} resamples)",
        )
    row["verdict"] = _verdict([row["t_p_value"], row["bootstrap_p_value"]])
    return row


def paired_differences(
    dataset: str,
    reference: str = "full",
    results_dir: str | os.PathLike | None = None,
    n_boot: int = 1000,
    level: float = 0.95,
) -> pd.DataFrame:
    """reference - variant for every other variant, paired by seed: difference (points, mean over
    seeds), its interval (low, high), seeds the reference wins, the p-values, the method used and
    the verdict (`NOISE_RULE`). With every predictions file present the interval and bootstrap p are
    `aofl.metrics.paired_seed_comparison`'s (seed 0: RESULTS.md's numbers); else a t-interval."""
    root = resolve_results_dir(results_dir)
    variants = _reference_variants(dataset, reference, root)
    diffs = seed_differences(dataset, reference, root)
    rows = []
    for name in variants:
        if name == reference:
            continue
        part = diffs[diffs["variant"] == name]
        rows.append(
            _compare(
                root,
                dataset,
                reference,
                name,
                part["difference"].to_numpy(),
                part["seed"].tolist(),
                n_boot,
                level,
            )
        )
    columns = ["variant", "n_seeds", "difference", "low", "high", "wins", "t_p_value", "bootstrap_p_value"]
    return pd.DataFrame(rows, columns=[*columns, "method", "verdict"])


def _p_text(row) -> str:
    named = (("t-test", row["t_p_value"]), ("bootstrap", row["bootstrap_p_value"]))
    # a bootstrap p of 0 means below the resolution of its resamples, not impossible
    return ", ".join(
        f"{name} p {'< 0.001' if p < 0.001 else f'{p:.3f}'}" for name, p in named if not math.isnan(p)
    )


def _one(row) -> str:
    return (
        f"`{row['variant']}` ({row['difference']:+.1f}, {row['wins']}/{row['n_seeds']} seeds, {_p_text(row)})"
    )


def verdict_lines(paired: pd.DataFrame, reference: str = "full") -> list[str]:
    """Plain sentences from `paired_differences`: where the reference wins beyond noise, where it
    loses, what is only suggestive and what is inside the noise. No number is written here by hand."""
    lines = []
    groups = (
        (BEYOND, True, f"`{reference}` wins beyond noise against:"),
        (BEYOND, False, f"`{reference}` loses beyond noise against:"),
        (SUGGESTIVE, True, f"Suggestive only (one of the two tests), `{reference}` ahead of:"),
        (SUGGESTIVE, False, f"Suggestive only (one of the two tests), `{reference}` behind:"),
    )
    for verdict, ahead, text in groups:
        part = paired[(paired["verdict"] == verdict) & ((paired["difference"] > 0) == ahead)]
        if len(part):
            lines.append(f"{text} " + "; ".join(_one(r) for _, r in part.iterrows()) + ".")
        elif verdict == BEYOND and ahead and len(paired):  # say it plainly when there is no clear win
            lines.append(f"`{reference}` wins beyond noise against no variant.")
    inside = paired[paired["verdict"] == INSIDE]
    if len(inside):
        lines.append(
            "Inside the noise (no claim either way): "
            + "; ".join(_one(r) for _, r in inside.iterrows())
            + "."
        )
    few = paired[paired["verdict"] == TOO_FEW]
    if len(few):
        lines.append("Too few paired seeds to test: " + ", ".join(f"`{v}`" for v in few["variant"]) + ".")
    return lines


# ---------------------------------------------------------------------------------------- studies


def _studies_dir(root: Path) -> Path:
    return root / "studies"


def _study_path(name: str, root: Path) -> Path:
    """The export of study `name`; a name that is not a file there (or tries to leave the folder) is a
    ValueError listing the studies that exist."""
    folder = _studies_dir(root)
    path = folder / f"{name}.json"
    if not name or Path(name).name != name or name.startswith(".") or not path.is_file():
        known = sorted(p.stem for p in folder.glob("*.json")) if folder.is_dir() else []
        raise ValueError(f"unknown study {name!r}: no {path}; studies there: {', '.join(known) or 'none'}")
    return path


def _load_study(name: str, root: Path) -> dict:
    path = _study_path(name, root)
    study = _read_json(path, STUDY_COMMAND)
    if not isinstance(study, dict) or not isinstance(study.get("trials"), list):
        raise ValueError(f"{path} has no list of `trials`; `{STUDY_COMMAND}` rewrites it")
    return study


def _percent(value) -> float:
    return 100 * float(value) if isinstance(value, (int, float)) else math.nan


def _study_row(name: str, root: Path) -> dict:
    # the dataset as the seed runs name it: with its views when a study ran on other ones
    # (`iemocap+sentence+lexicon+tfidf+tuned-full` is a study of `iemocap+sentence+lexicon+tfidf+tuned`)
    row: dict = {"study": name, "dataset": name.rsplit("-", 1)[0] if "-" in name else name, "problem": None}
    try:
        study = _load_study(name, root)
    except ValueError as e:  # one unreadable export (a tuner writing it) must not hide the others
        return {**row, "problem": str(e)}
    states = [t.get("state") for t in study["trials"]]
    best = study.get("best") or {}
    return {
        **row,
        "dataset": "+".join([study["dataset"], *(study.get("views") or [])])
        if study.get("dataset")
        else row["dataset"],
        "variant": study.get("variant"),
        "views": "+".join(study.get("views") or []),
        "folds": study.get("folds"),
        "n_trials": len(states),
        "complete": states.count("COMPLETE"),
        "pruned": states.count("PRUNED"),
        "failed": states.count("FAIL"),
        "running": states.count("RUNNING"),
        "best_number": best.get("number"),
        "best_cv": _percent(best.get("cv_mean")),
        "best_cv_std": _percent(best.get("cv_std")),
        "final_epochs": best.get("final_epochs"),
    }


def list_studies(results_dir: str | os.PathLike | None = None, dataset: str | None = None) -> pd.DataFrame:
    """One row per exported study (sorted by name), optionally of one dataset: its variant, views,
    folds, trial counts by state and the chosen trial's CV WF1 (%). An unreadable export stays listed
    with its `problem`. No studies folder yet: an empty table."""
    root = resolve_results_dir(results_dir)
    folder = _studies_dir(root)
    names = sorted(p.stem for p in folder.glob("*.json")) if folder.is_dir() else []
    columns = ["study", "dataset", "variant", "views", "folds", "n_trials", "complete", "pruned", "failed"]
    columns += ["running", "best_number", "best_cv", "best_cv_std", "final_epochs", "problem"]
    df = pd.DataFrame([_study_row(n, root) for n in names], columns=columns)
    if dataset is not None:
        df = df[df["dataset"] == dataset].reset_index(drop=True)
    return df


def study_trials(name: str, results_dir: str | os.PathLike | None = None) -> pd.DataFrame:
    """One row per trial, by number: state, value (CV WF1 %, the running mean at pruning for a pruned
    trial, NaN for failed or running ones), best_so_far (the best complete value up to this trial:
    how the search converged), chosen (the exported best), folds done, seconds, then `params.<name>`."""
    study = _load_study(name, resolve_results_dir(results_dir))
    chosen = (study.get("best") or {}).get("number")
    rows = []
    for t in study["trials"]:
        row = {
            "number": t.get("number"),
            "state": t.get("state"),
            "value": _percent(t.get("value")),
            "chosen": t.get("number") == chosen,
            "folds_done": len(t.get("fold_scores") or []),
            "seconds": _number(t.get("seconds")),
        }
        row.update({f"params.{k}": v for k, v in (t.get("params") or {}).items()})
        rows.append(row)
    base = ["number", "state", "value", "chosen", "folds_done", "seconds"]
    df = pd.DataFrame(rows) if rows else pd.DataFrame(columns=base)
    df = df.sort_values("number", kind="stable").reset_index(drop=True)
    # pruned values are running means of unfinished trials: not results, so not in the best so far
    complete = df["value"].where(df["state"] == "COMPLETE").astype(float)
    df.insert(3, "best_so_far", complete.cummax().ffill())
    return df


def study_best(name: str, results_dir: str | os.PathLike | None = None) -> dict | None:
    """The chosen setting of a study: trial number, CV WF1 mean/std and per fold (%), final epochs,
    params and the train flags; None while no trial has completed."""
    best = _load_study(name, resolve_results_dir(results_dir)).get("best")
    if not best:
        return None
    return {
        "number": best.get("number"),
        "cv_mean": _percent(best.get("cv_mean")),
        "cv_std": _percent(best.get("cv_std")),
        "fold_scores": [_percent(v) for v in best.get("fold_scores") or []],
        "final_epochs": best.get("final_epochs"),
        "params": dict(best.get("params") or {}),
        "train_args": list(best.get("train_args") or []),
    }
