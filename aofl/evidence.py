"""The project's evidence as tables: test scores over seeds, paired differences, geometry, the CV studies.

The app's other pages show single checkpoints (seed 0); what supports a claim lives in the results
directory. Two sources of seed runs:

- per-run tables (`runs/<dataset>/<arm>/s<seed>_<split>.parquet`, `aofl.runs`, written by
  `python -m aofl finals`): each final run's test predictions with their dialogues, θ and φ per
  utterance and α at the start and end of training. A dataset that has them is read from them alone:
  they come from one campaign of final runs, and the older files' runs used other settings;
- otherwise the older files: seeds per variant (`real_summary.json`, `summary.json`) and their test
  predictions (`preds/<dataset>_<variant>_s<seed>.csv`, whose utterance ids are `<dialogue>#<turn>`).

Beside them the exported Optuna studies (`studies/<study>.json`). These pure functions (pandas, no
torch, no Streamlit) read those files for the Evidence page and `python -m aofl results`. Scores are
percentages (weighted F1 x 100); differences are points.

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

import numpy as np
import pandas as pd

from .runs import RUNS_SUBDIR, list_runs, read_run_table, run_path
from .tune_space import on_bounds

__all__ = [
    "arm_order",
    "RESULTS_ENV",
    "REPORT_COMMAND",
    "STUDY_COMMAND",
    "ALPHA",
    "NOISE_RULE",
    "FINALS_COMMAND",
    "fold_curves_frame",
    "GEOMETRY_QUANTITIES",
    "resolve_results_dir",
    "results_stamp",
    "results_key",
    "datasets",
    "seed_scores",
    "variant_summary",
    "seed_differences",
    "paired_differences",
    "verdict_lines",
    "power_lines",
    "dialogue_of",
    "geometry_table",
    "geometry_long",
    "paired_markdown",
    "list_studies",
    "study_trials",
    "study_best",
    "campaigns",
]

RESULTS_ENV = "AOFL_RESULTS_DIR"
# How seed runs are made now: per-run tables (`runs/`), which replace the archived summaries below
REPORT_COMMAND = "python -m aofl finals --data DATA --study DATA-full --variants ... --seeds 0-9"
STUDY_COMMAND = "python -m aofl tune --data DATA --variant VARIANT --out DIR --report-only"
ALPHA = 0.05  # a p-value below this counts as beyond that source of noise
NOISE_RULE = (
    f"beyond noise: after Holm's correction over the dataset's comparisons (every variant against the "
    f"reference), both the paired t-test over seeds (seed-to-seed noise) and the bootstrap over test "
    f"dialogues and seeds (test-sampling and seed noise) give p < {ALPHA}; suggestive: one of the two "
    f"corrected p-values is; inside noise: neither (with no predictions on disk, the corrected t-test "
    f"alone decides)"
)
POWER, POWER_ALPHA = 0.8, 0.05  # the power statement: a two-sided paired t-test over seeds
FINALS_COMMAND = "python -m aofl finals --data {dataset} --study S ..."
BEYOND, SUGGESTIVE, INSIDE, TOO_FEW = "beyond noise", "suggestive", "inside noise", "too few seeds"

_REPO_RESULTS = Path(__file__).resolve().parents[1] / "results"
_REAL_SUMMARY = "real_summary.json"
_SUMMARY = "summary.json"
# the same shape for runs on other text views (key: dataset+views, e.g. iemocap+sentence+lexicon+tfidf+tuned)
_VIEW_SUMMARY = "view_search_summary.json"
# real_summary.json and view_search_summary.json are archives: the drivers that wrote them (tools/
# run_real_experiments.py, run_view_search_finals.py) retired for `finals`; git history keeps them
VIEW_COMMAND = "python -m aofl finals --data DATA+VIEWS --study DATA+VIEWS-full --variants ... --seeds 0-9"


# ------------------------------------------------------------------------------------------- files


def resolve_results_dir(results_dir: str | os.PathLike | None = None) -> Path:
    """The results directory: `results_dir`, else $AOFL_RESULTS_DIR, else the repository's results/."""
    if results_dir is not None:
        return Path(results_dir).expanduser()
    env = os.environ.get(RESULTS_ENV)
    return Path(env).expanduser() if env else _REPO_RESULTS


def results_stamp(results_dir: str | os.PathLike | None = None, dataset: str | None = None) -> tuple:
    """(file name, mtime_ns, size) of every file these tables read: a cache keyed by it sees a
    rewritten summary or a newly exported study as new data, never as a stale hit. With `dataset`, only
    the files that dataset's tables read (its per-run tables and predictions, the summaries, the studies)."""
    root = resolve_results_dir(results_dir)
    names = [root / _REAL_SUMMARY, root / _SUMMARY, root / _VIEW_SUMMARY]
    runs, preds = (
        ("*/*/*.parquet", "*.csv") if dataset is None else (f"{dataset}/*/*.parquet", f"{dataset}_*.csv")
    )
    for folder, pattern in (
        (root / "preds", preds),
        (_studies_dir(root), "*.json"),
        (root / RUNS_SUBDIR, runs),
    ):
        names += sorted(folder.glob(pattern)) if folder.is_dir() else []
    out = []
    for p in names:
        try:
            st = p.stat()
        except OSError:  # absent, or removed between the glob and the stat
            continue
        # relpath, not relative_to: a campaign in a subfolder reads its parent's studies (../studies/...)
        out.append((os.path.relpath(p, root), st.st_mtime_ns, st.st_size))
    return tuple(out)


def results_key(results_dir: str | os.PathLike | None = None, dataset: str | None = None) -> str:
    """`results_stamp` as one short digest: the app's caches take it as an argument, and Streamlit hashes
    a tuple of hundreds of entries on every call (12 ms for the ~600 files of two datasets' campaigns)."""
    import hashlib

    return hashlib.blake2b(repr(results_stamp(results_dir, dataset)).encode(), digest_size=16).hexdigest()


def _read_json(path: Path, made_by: str, archive: bool = False) -> Any:
    """A results file's JSON. `archive`: a retired driver's summary, which `made_by` (finals) replaces
    with per-run tables rather than rewrites."""
    if not path.is_file():
        if archive:
            raise FileNotFoundError(
                f"{path} is missing, and no per-run tables replace it: `{made_by}` writes them"
            )
        raise FileNotFoundError(f"{path} is missing: `{made_by}` writes it")
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        if archive:
            raise ValueError(
                f"{path} is not valid JSON ({e}); restore it from git, or `{made_by}` writes per-run "
                f"tables that replace it"
            ) from e
        raise ValueError(f"{path} is not valid JSON ({e}); `{made_by}` rewrites it") from e


def _real_summary(root: Path) -> dict:
    path = root / _REAL_SUMMARY
    data = _read_json(path, REPORT_COMMAND, archive=True)
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise ValueError(
            f"{path} is not {{dataset: {{variant: {{...}}}}}}; restore it from git, or `{REPORT_COMMAND}` "
            f"writes per-run tables that replace it"
        )
    extra = root / _VIEW_SUMMARY  # optional: runs on other views, listed after the default views' datasets
    if extra.is_file():
        more = _read_json(extra, VIEW_COMMAND, archive=True)
        if not isinstance(more, dict) or not all(isinstance(v, dict) for v in more.values()):
            raise ValueError(
                f"{extra} is not {{dataset: {{variant: {{...}}}}}}; restore it from git, or `{VIEW_COMMAND}` "
                f"writes per-run tables that replace it"
            )
        data = {**data, **{k: v for k, v in more.items() if k not in data}}
    return data


# ---------------------------------------------------------------------------------- per-run tables

_FIRST_ARMS = ("full", "baseline")  # listed first, the others by name
_RUNS_SOURCE = f"{RUNS_SUBDIR}/"  # variant_summary's `source` of seeds read from per-run tables


def _run_datasets(root: Path) -> list[str]:
    """Datasets with at least one per-run test table (by file name; no table is opened)."""
    folder = root / RUNS_SUBDIR
    if not folder.is_dir():
        return []
    return sorted({p.parent.parent.name for p in folder.glob("*/*/s*_test.parquet")})


def _run_tables(
    root: Path, dataset: str, split: str = "test", runs: pd.DataFrame | None = None
) -> pd.DataFrame:
    """`aofl.runs.list_runs` of one dataset (or `runs`, its result) for one split: a row per run."""
    runs = list_runs(root, dataset) if runs is None else runs
    return runs[runs["split"] == split].reset_index(drop=True)


def arm_order(arms) -> list[str]:
    """full and baseline first, then the other arms by name (every table of arms uses this order)."""
    arms = list(dict.fromkeys(arms))
    return [a for a in _FIRST_ARMS if a in arms] + sorted(a for a in arms if a not in _FIRST_ARMS)


def _run_wf1(row) -> float:
    """A run's weighted F1 (fraction): its metadata's, else scored from its table."""
    wf1 = row.get("wf1")
    if _is_number(wf1):
        return float(wf1) / 100
    from .metrics import weighted_f1

    table, _ = read_run_table(row["path"])
    return weighted_f1(table["label_id"], table["prediction_id"])


def _study_cv(root: Path, study, variant) -> float | None:
    """The CV WF1 of the study that chose this arm's setting, when the study searched this very variant
    (an ablation that inherits `full`'s setting has no CV score of its own)."""
    if not isinstance(study, str) or not study:
        return None
    try:
        export = _load_study(study, root)
    except (ValueError, FileNotFoundError):
        return None
    best = export.get("best") or {}
    return best.get("cv_mean") if export.get("variant") == variant else None


def _variants_of_runs(runs: pd.DataFrame, valid: pd.DataFrame, root: Path) -> dict:
    """The same {variant: {...}} as real_summary.json's, made from per-run tables (arm = variant)."""
    out = {}
    for arm in arm_order(runs["arm"]):
        part = runs[runs["arm"] == arm].sort_values("seed")
        first = part.iloc[0]
        accuracy = [a / 100 for a in part.get("accuracy", pd.Series(dtype=float)) if _is_number(a)]
        valid_part = valid[valid["arm"] == arm] if len(valid) else valid
        setting, study = first.get("setting"), first.get("study")
        study = study if isinstance(study, str) and study else None
        out[arm] = {
            "seeds": [int(s) for s in part["seed"]],
            "test_weighted_f1": [_run_wf1(r) for _, r in part.iterrows()],
            "test_accuracy": accuracy,
            "valid_weighted_f1": [_run_wf1(r) for _, r in valid_part.iterrows()],
            "cv_weighted_f1": _study_cv(root, study, first.get("variant", arm)),
            "params_from": f"{setting} ({study})" if study else setting,
            "study": study,
            "source": _RUNS_SOURCE,
        }
    return out


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def _source(dataset: str, root: Path) -> str:
    """Where a dataset's seed runs are read from (for messages)."""
    if dataset in _run_datasets(root):
        return str(root / RUNS_SUBDIR / dataset)
    return str(root / _REAL_SUMMARY)


# ------------------------------------------------------------------------------------ both sources


def _variants(dataset: str, root: Path) -> dict:
    """{variant: {seeds, test_weighted_f1, cv_weighted_f1, params_from, source, ...}} of one dataset,
    checked. Per-run tables replace an arm's older files (real_summary.json) once they cover every seed
    those files have: the final runs reproduce the older runs of the same setting seed for seed, so a
    campaign of final runs that is still under way shows each arm whole, from one source or the other."""
    archive = _real_summary(root) if (root / _REAL_SUMMARY).is_file() else None  # read once
    old = _old_variants(dataset, root, archive) if archive and dataset in archive else {}
    if dataset not in _run_datasets(root):
        if not old and archive is None and _run_datasets(root):  # a campaign of final runs, not this dataset
            raise FileNotFoundError(
                f"no per-run tables of {dataset!r} under {root / RUNS_SUBDIR} (it has: "
                f"{', '.join(_run_datasets(root))}): `{FINALS_COMMAND.format(dataset=dataset)} "
                f"--results-dir {root}` writes them"
            )
        if not old:
            _old_variants(dataset, root, archive)  # raises, naming what is missing
        return old
    runs = list_runs(root, dataset)  # one read of the tables' metadata for both splits
    new = _variants_of_runs(
        _run_tables(root, dataset, runs=runs), _run_tables(root, dataset, "valid", runs), root
    )
    merged = {}
    for name in arm_order([*old, *new]):
        if name in new and (name not in old or set(old[name]["seeds"]) <= set(new[name]["seeds"])):
            merged[name] = new[name]
        else:
            merged[name] = old[name]
    return merged


def _old_variants(dataset: str, root: Path, data: dict | None = None) -> dict:
    """real_summary.json's variants of one dataset, checked (`data`: the file's contents, if read)."""
    path = root / _REAL_SUMMARY
    data = _real_summary(root) if data is None else data
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
    data = _read_json(path, REPORT_COMMAND, archive=True)
    return data.get(dataset, {}) if isinstance(data, dict) else {}


def datasets(results_dir: str | os.PathLike | None = None) -> list[str]:
    """The datasets with seed runs: real_summary.json's, in its order, then those with only per-run tables."""
    root = resolve_results_dir(results_dir)
    from_runs = _run_datasets(root)
    if from_runs and not (root / _REAL_SUMMARY).is_file():
        return from_runs
    try:
        names = list(_real_summary(root))
    except FileNotFoundError as e:
        raise FileNotFoundError(
            f"{e}; per-run tables under {root / RUNS_SUBDIR} (`{FINALS_COMMAND}`) are read too"
        ) from e
    return names + [d for d in from_runs if d not in names]


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


def _mean_of(values, scale: float = 100) -> float:
    return scale * float(np.mean(values)) if values else math.nan


def _std_of(values, scale: float = 100) -> float:
    return scale * float(np.std(values, ddof=1)) if len(values) > 1 else math.nan


def variant_summary(dataset: str, results_dir: str | os.PathLike | None = None) -> pd.DataFrame:
    """One row per variant: n, test WF1 mean and std (ddof 1) over seeds, the CV WF1 of the setting
    it was trained with (only searched variants have one) and where its setting came from (`study`: the
    study by name, when per-run tables record it); plus test
    accuracy and valid WF1 (from the per-run tables, else from summary.json when it has them) and
    `source`, the files the seeds were read from."""
    root = resolve_results_dir(results_dir)
    variants = _variants(dataset, root)
    extras = _summary_rows(dataset, root)
    scores = seed_scores(dataset, root)
    rows = []
    for name, v in variants.items():
        s = scores.loc[scores["variant"] == name, "test_wf1"]
        extra = extras.get(name, {})
        cv = v.get("cv_weighted_f1")
        from_runs = v.get("source") == _RUNS_SOURCE
        rows.append(
            {
                "variant": name,
                "n": len(s),
                "test_wf1_mean": float(s.mean()) if len(s) else math.nan,
                "test_wf1_std": _std(s),
                "cv_wf1": 100 * float(cv) if cv is not None else math.nan,
                "params_from": v.get("params_from"),
                "study": v.get("study"),  # the study whose setting the runs used (per-run tables only)
                "test_acc_mean": _mean_of(v["test_accuracy"])
                if from_runs
                else _number(extra.get("test_acc_mean")),
                "test_acc_std": _std_of(v["test_accuracy"])
                if from_runs
                else _number(extra.get("test_acc_std")),
                "valid_wf1_mean": _mean_of(v["valid_weighted_f1"])
                if from_runs
                else _number(extra.get("valid_wf1_mean")),
                "source": v.get("source", _REAL_SUMMARY),
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
            f"no variant {reference!r} of {dataset} in {_source(dataset, root)}; it has: {', '.join(variants)}"
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


def dialogue_of(utterance_ids) -> np.ndarray:
    """The dialogue of each utterance id of the older predictions files (`<dialogue>#<turn>`): the part
    before the last '#' (IEMOCAP `Ses05M_impro03#0` -> `Ses05M_impro03`, MELD `1153#0` -> `1153`).
    An id without '#' names no dialogue: a ValueError, never a silent one-utterance dialogue."""
    ids = pd.Series(list(utterance_ids), dtype=str)
    loose = ~ids.str.contains("#", regex=False)
    if loose.any():
        raise ValueError(
            f"utterance id {ids[loose].iloc[0]!r} names no dialogue (expected <dialogue>#<turn>)"
        )
    return ids.str.rsplit("#", n=1).str[0].to_numpy()


def _read_preds(path: Path) -> pd.DataFrame:
    """label_id, prediction_id and dialogue by utterance_id, from a per-run table or a predictions CSV."""
    if path.suffix == ".parquet":
        table, _ = read_run_table(path)
        df = table[["utterance_id", "dialogue", "label_id", "prediction_id"]]
        return df.set_index("utterance_id")
    try:
        df = pd.read_csv(path, usecols=["utterance_id", "label_id", "prediction_id"])
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as e:
        raise ValueError(f"{path} is not a predictions CSV (utterance_id,label_id,prediction_id): {e}") from e
    try:
        df["dialogue"] = dialogue_of(df["utterance_id"])
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from e
    return df.set_index("utterance_id")


class _Predictions:
    """Test predictions of a dataset's runs, read once per call of `paired_differences` (the
    reference's files are paired with every variant's)."""

    def __init__(self, root: Path, dataset: str, variants: dict | None = None):
        self.root, self.dataset = root, dataset
        variants = _variants(dataset, root) if variants is None else variants
        # each arm's files come from where its seeds came from (`_variants`)
        self.runs_of = {name for name, v in variants.items() if v.get("source") == _RUNS_SOURCE}
        self.all_from_runs = self.runs_of >= set(variants)
        self._read: dict[Path, pd.DataFrame] = {}

    def path(self, variant: str, seed: int) -> Path:
        if variant in self.runs_of:
            return run_path(self.root, self.dataset, variant, seed, "test")
        return _preds_path(self.root, self.dataset, variant, seed)

    def where(self) -> str:
        runs = f"per-run tables ({RUNS_SUBDIR}/{self.dataset}/)"
        preds = "preds/ (dialogue: the utterance id before '#')"
        if not self.runs_of:
            return preds
        if self.all_from_runs:
            return runs
        return f"{runs} for {', '.join(sorted(self.runs_of))}; {preds} for the others"

    def read(self, path: Path) -> pd.DataFrame:
        if path not in self._read:
            self._read[path] = _read_preds(path)
        return self._read[path]

    @staticmethod
    def _aligned(f: pd.DataFrame, first: pd.DataFrame, path: Path, first_path: Path) -> pd.DataFrame:
        """f's rows in first's utterance order (runs of one test split share it: no reindex then)."""
        if not f.index.equals(first.index):
            if len(f) != len(first) or not f.index.sort_values().equals(first.index.sort_values()):
                raise ValueError(
                    f"{path} and {first_path} predict different utterances: they cannot be paired"
                )
            f = f.loc[first.index]
        if not np.array_equal(f["label_id"].to_numpy(), first["label_id"].to_numpy()):
            raise ValueError(f"{path} and {first_path} label the same utterances differently")
        return f

    def paired(self, reference: str, variant: str, seeds: list[int]):
        """(labels, reference predictions per seed, variant predictions per seed, dialogues) on the same
        utterances, or None when a file is missing (then only the per-seed scores are compared)."""
        paths = [(self.path(reference, s), self.path(variant, s)) for s in seeds]
        if not seeds or not all(a.is_file() and b.is_file() for a, b in paths):
            return None
        first = self.read(paths[0][0])
        preds_ref, preds_var = [], []
        for a, b in paths:
            fa, fb = (
                self._aligned(f, first, p, paths[0][0]) for f, p in ((self.read(a), a), (self.read(b), b))
            )
            preds_ref.append(fa["prediction_id"].to_numpy())
            preds_var.append(fb["prediction_id"].to_numpy())
        return first["label_id"].to_numpy(), preds_ref, preds_var, first["dialogue"].to_numpy()


def _verdict(p_values: list[float]) -> str:
    tested = [p for p in p_values if not math.isnan(p)]
    if not tested:
        return TOO_FEW
    passed = sum(p < ALPHA for p in tested)
    return BEYOND if passed == len(tested) else SUGGESTIVE if passed else INSIDE


def _compare(variant, diffs, seeds, predictions, reference, n_boot, level) -> dict:
    """One row of `paired_differences` before the correction for several comparisons: the t-test over
    the per-seed differences, with the interval and a second p from `dialogue_seed_bootstrap` when
    every prediction file of these seeds is there."""
    from .metrics import detectable_difference, dialogue_seed_bootstrap, paired_t_test

    paired = predictions.paired(reference, variant, seeds)
    if paired is not None:
        c = dialogue_seed_bootstrap(*paired, n_boot=n_boot, level=level)
        diffs = 100 * np.asarray(c["per_seed"])  # the same seeds' scores, now from the predictions
    t_p, t_low, t_high = paired_t_test(diffs, level)
    sd = float(np.std(diffs, ddof=1)) if len(diffs) > 1 else math.nan
    row = {
        "variant": variant,
        "n_seeds": len(diffs),
        "difference": float(diffs.mean()) if len(diffs) else math.nan,
        "low": t_low,
        "high": t_high,
        "wins": int((diffs > 0).sum()),
        "t_p_value": t_p,
        "bootstrap_p_value": math.nan,
        "sd_diff": sd,
        "detectable_80": detectable_difference(sd, len(diffs), POWER, POWER_ALPHA),
        "method": f"paired t-test over {len(diffs)} seeds; {level:.0%} t-interval "
        f"(no predictions in {predictions.where()}: no bootstrap)",
    }
    if paired is not None:
        row.update(
            low=100 * c["low"],
            high=100 * c["high"],
            bootstrap_p_value=c["p_bootstrap"],
            method=f"bootstrap over test dialogues and seeds ({n_boot} resamples of {c['n_dialogues']} "
            f"dialogues and {c['n_seeds']} seeds; {level:.0%} percentile interval; predictions from "
            f"{predictions.where()}); paired t-test over {c['n_seeds']} seeds",
        )
    return row


def _correct(rows: list[dict]) -> None:
    """Holm over the comparisons of one dataset, for each test; p_holm (the verdict's) is the larger
    corrected p of the two tests, since a claim beyond noise needs both."""
    from .metrics import holm

    for key in ("t_p_value", "bootstrap_p_value"):
        adjusted = holm([r[key] for r in rows])
        for r, p in zip(rows, adjusted):
            r[key.replace("_value", "_holm")] = float(p)
    m = sum(not (math.isnan(r["t_p_value"]) and math.isnan(r["bootstrap_p_value"])) for r in rows)
    for r in rows:
        corrected = [p for p in (r["t_p_holm"], r["bootstrap_p_holm"]) if not math.isnan(p)]
        r["p_holm"] = max(corrected) if corrected else math.nan
        r["verdict"] = _verdict([r["t_p_holm"], r["bootstrap_p_holm"]])
        r["method"] += f"; Holm over {m} comparison{'s' if m != 1 else ''}"


PAIRED_COLUMNS = [
    "variant",
    "n_seeds",
    "difference",
    "low",
    "high",
    "wins",
    "t_p_value",
    "bootstrap_p_value",
    "p_holm",
    "t_p_holm",
    "bootstrap_p_holm",
    "sd_diff",
    "detectable_80",
    "method",
    "verdict",
]


def paired_differences(
    dataset: str,
    reference: str = "full",
    results_dir: str | os.PathLike | None = None,
    n_boot: int = 1000,
    level: float = 0.95,
) -> pd.DataFrame:
    """reference - variant for every other variant, paired by seed: difference (points, mean over
    seeds), its interval (low, high), seeds the reference wins, the p-values of the paired t-test over
    seeds and of the bootstrap over test dialogues and seeds (`aofl.metrics.dialogue_seed_bootstrap`,
    seed 0), each corrected by Holm over this dataset's comparisons (t_p_holm, bootstrap_p_holm; p_holm
    the larger), the per-seed sd of the difference and the difference detectable at 80% power
    (`detectable_80`, points), the method and the verdict (`NOISE_RULE`, from the corrected p-values).
    Without every predictions file of a comparison: a t-interval and the t-test alone."""
    root = resolve_results_dir(results_dir)
    variants = _reference_variants(dataset, reference, root)
    diffs = seed_differences(dataset, reference, root)
    predictions = _Predictions(root, dataset, variants)
    rows = []
    for name in variants:
        if name == reference:
            continue
        part = diffs[diffs["variant"] == name]
        rows.append(
            _compare(
                name,
                part["difference"].to_numpy(),
                part["seed"].tolist(),
                predictions,
                reference,
                n_boot,
                level,
            )
        )
    _correct(rows)
    return pd.DataFrame(rows, columns=PAIRED_COLUMNS)


def _p(p: float) -> str:
    # a bootstrap p of 0 means below the resolution of its resamples, not impossible
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def _p_text(row) -> str:
    """Each test's p-value with its Holm-corrected value beside it ("t-test p 0.004 (Holm 0.038)"): a
    suggestive verdict rests on one corrected value, so the larger one alone would hide which."""
    parts = []
    for name, raw, corrected in (
        ("t-test", "t_p_value", "t_p_holm"),
        ("bootstrap", "bootstrap_p_value", "bootstrap_p_holm"),
    ):
        p, holm = row.get(raw, math.nan), row.get(corrected, math.nan)
        if not pd.isna(p):
            parts.append(f"{name} p {_p(p)}" + ("" if pd.isna(holm) else f" (Holm {_p(holm)})"))
    return ", ".join(parts)


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
        (SUGGESTIVE, True, f"Suggestive only (one of the two corrected tests), `{reference}` ahead of:"),
        (SUGGESTIVE, False, f"Suggestive only (one of the two corrected tests), `{reference}` behind:"),
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


def power_lines(paired: pd.DataFrame) -> list[str]:
    """What these seeds can see, one sentence per seed count: with n seeds and the per-seed sd of the
    difference (the median over the comparisons with n seeds), the smallest difference a two-sided
    paired t-test detects at 80% power and alpha 0.05 (`aofl.metrics.detectable_difference`)."""
    from .metrics import detectable_difference

    lines = []
    tested = paired.dropna(subset=["sd_diff"]) if "sd_diff" in paired else paired.iloc[:0]
    for n, part in tested.groupby("n_seeds"):
        sd = float(part["sd_diff"].median())
        where = (
            f"median over {len(part)} comparisons, {part['sd_diff'].min():.1f}–{part['sd_diff'].max():.1f}"
            if len(part) > 1
            else f"`{part['variant'].iloc[0]}`"
        )
        x = detectable_difference(sd, int(n), POWER, POWER_ALPHA)
        lines.append(
            f"With {int(n)} seeds and a per-seed sd of the difference of {sd:.1f} points ({where}), a "
            f"difference of {x:.1f} points is detectable at {POWER:.0%} power (two-sided paired t-test, "
            f"α {POWER_ALPHA}, before Holm's correction; each comparison's own: `detectable_80`)."
        )
    return lines


# ---------------------------------------------------------------------------------------- studies


def _studies_dir(root: Path) -> Path:
    """root/studies; a campaign in a subfolder of a results directory (results/curve, made by `finals
    --results-dir results/curve --studies results/studies`) without studies of its own reads its parent's."""
    own, parent = root / "studies", root.parent / "studies"
    parent_is_results = (root.parent / RUNS_SUBDIR).is_dir() or (root.parent / _REAL_SUMMARY).is_file()
    return parent if not own.is_dir() and parent.is_dir() and parent_is_results else own


def campaigns(results_dir: str | os.PathLike | None = None, dataset: str | None = None) -> list[Path]:
    """The results directory, then each of its subfolders with per-run tables of its own (of `dataset`,
    when given): one campaign each (e.g. results/curve, the final runs at the curve-rule studies'
    settings)."""
    root = resolve_results_dir(results_dir)

    def is_campaign(d: Path) -> bool:
        found = _run_datasets(d)
        return bool(found) if dataset is None else dataset in found

    subs = sorted(d for d in root.iterdir() if d.is_dir() and is_campaign(d)) if root.is_dir() else []
    return [root] + subs


FAIR_CAMPAIGN = "curve"  # results/curve: the final runs at the fair (curve-rule) studies' settings


def opening_campaign(results_dir: str | os.PathLike | None, dataset: str | None) -> Path:
    """The campaign the Evidence page opens on: the fair one (`FAIR_CAMPAIGN`) when it has runs of
    `dataset`, else the results directory. Its studies gave both families equal effort and scored the
    recipe the final runs use, so where it exists it is the better evidence."""
    root, *subs = campaigns(results_dir, dataset)
    if dataset is None:
        return root
    return next((c for c in subs if c.name == FAIR_CAMPAIGN), root)


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


def _study_dataset(study: dict) -> str:
    """The dataset a study export names, with its views (as written: not checked, an export may
    name views this version does not know)."""
    from .data.names import DatasetName  # here: aofl.data imports torch, which evidence needs nowhere else

    return str(DatasetName(str(study["dataset"]), views=tuple(study.get("views") or ())))


def _study_row(name: str, root: Path) -> dict:
    # the dataset as the seed runs name it: with its views when a study ran on other ones
    # (`iemocap+sentence+lexicon+tfidf+tuned-full` is a study of `iemocap+sentence+lexicon+tfidf+tuned`)
    from .data.names import parse_study_name

    row: dict = {"study": name, "dataset": parse_study_name(name)[0], "problem": None}
    try:
        study = _load_study(name, root)
    except ValueError as e:  # one unreadable export (a tuner writing it) must not hide the others
        return {**row, "problem": str(e)}
    states = [t.get("state") for t in study["trials"]]
    best = study.get("best") or {}
    return {
        **row,
        "dataset": _study_dataset(study) if study.get("dataset") else row["dataset"],
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
    params, the train flags and `on_bounds` (`aofl.tune_space.on_bounds`: the values on an edge of the
    search space); None while no trial has completed."""
    export = _load_study(name, resolve_results_dir(results_dir))
    best = export.get("best")
    if not best:
        return None
    rule = export.get("rule") or "fold_best"  # the studies before the curve rule have no `rule`
    params = dict(best.get("params") or {})
    # curve: the one common epoch; fold_best: each fold's own best epoch against the cap
    epochs = best.get("final_epochs") if rule == "curve" else best.get("best_epochs")
    variant = export.get("variant") or "full"
    chosen = next((t for t in export["trials"] if t.get("number") == best.get("number")), {})
    return {
        "number": best.get("number"),
        "cv_mean": _percent(best.get("cv_mean")),
        "cv_std": _percent(best.get("cv_std")),
        "fold_scores": [_percent(v) for v in best.get("fold_scores") or []],
        "final_epochs": best.get("final_epochs"),
        "params": params,
        "train_args": list(best.get("train_args") or []),
        "on_bounds": on_bounds(params, variant, rule, epochs, export.get("search_epochs")),
        "rule": rule,
        "score_rule": export.get("score_rule") or _FOLD_BEST_RULE,
        # curve rule: each fold's held-out WF1 (%) after every epoch, the evidence behind final_epochs
        "fold_curves": [[_percent(v) for v in c] for c in chosen.get("fold_curves") or []],
    }


# the studies before the curve rule exported no `score_rule`
_FOLD_BEST_RULE = (
    "each fold's held-out weighted F1 at its own best epoch (early stopping), averaged over folds; a pruned "
    "trial's value is its running mean when it stopped"
)


def fold_curves_frame(curves: list) -> pd.DataFrame:
    """fold ("fold 1", ..., then "mean"), epoch (1-based), wf1: a chosen trial's per-epoch held-out curves
    (`study_best(...)["fold_curves"]`) and their fold mean, long, for a figure or a CSV."""
    rows = [
        {"fold": f"fold {i + 1}", "epoch": e + 1, "wf1": v}
        for i, curve in enumerate(curves)
        for e, v in enumerate(curve)
    ]
    if curves and len({len(c) for c in curves}) == 1:  # the curve rule trains every fold alike
        rows += [
            {"fold": "mean", "epoch": e + 1, "wf1": float(np.mean(v))} for e, v in enumerate(zip(*curves))
        ]
    return pd.DataFrame(rows, columns=["fold", "epoch", "wf1"])


# --------------------------------------------------------------------------------------- geometry

# per run: wf1 (%) a number; the others {modality: value}: θ and φ (degrees, mean over the split's
# utterances), the share (0-1) of utterances with θ > φ, α at the start and end of training and its
# change (end - start, degrees; empty without L_AAC's target)
GEOMETRY_QUANTITIES = (
    "wf1",
    "theta_mean",
    "phi_mean",
    "theta_gt_phi_share",
    "alpha_start",
    "alpha_end",
    "alpha_change",
)


def _run_geometry(table: pd.DataFrame, meta: dict) -> dict:
    """One run's geometry (GEOMETRY_QUANTITIES) from its table and metadata."""
    listed = list(meta.get("modalities") or [])
    found = [c[len("theta_") :] for c in table.columns if c.startswith("theta_")]
    modalities = [m for m in listed + found if m in found and f"phi_{m}" in table]
    modalities = list(dict.fromkeys(modalities))
    wf1 = meta.get("wf1")
    if not _is_number(wf1):
        from .metrics import weighted_f1

        wf1 = 100 * weighted_f1(table["label_id"], table["prediction_id"])
    start, end = (_in_order(meta.get(key) or {}, listed) for key in ("alpha_start", "alpha_end"))
    theta = {m: table[f"theta_{m}"].to_numpy(dtype=float) for m in modalities}
    phi = {m: table[f"phi_{m}"].to_numpy(dtype=float) for m in modalities}
    return {
        "wf1": float(wf1),
        "theta_mean": {m: float(np.nanmean(theta[m])) for m in modalities},
        "phi_mean": {m: float(np.nanmean(phi[m])) for m in modalities},
        "theta_gt_phi_share": {m: float(np.mean(theta[m] > phi[m])) for m in modalities},
        "alpha_start": start,
        "alpha_end": end,
        "alpha_change": {m: end[m] - start[m] for m in start if m in end},
    }


def _in_order(values: dict, modalities: list[str]) -> dict:
    """{modality: float} in the run's modality order (the metadata's JSON has its keys sorted)."""
    keys = [m for m in modalities if m in values] + sorted(m for m in values if m not in modalities)
    return {m: float(values[m]) for m in keys if _is_number(values[m])}


def _mean_and_ci(values: list[float], level: float) -> tuple[float, list[float]]:
    """Mean over seeds and its t-interval [low, high] (NaN for fewer than 2 seeds)."""
    from .metrics import paired_t_test

    if not values:
        return math.nan, [math.nan, math.nan]
    _, low, high = paired_t_test(values, level)
    return float(np.mean(values)), [low, high]


def _summarise(per_seed: list, level: float):
    """(mean, ci) of a quantity over seeds: numbers for a number, {modality: ...} for dicts."""
    if all(isinstance(v, dict) for v in per_seed):
        modalities = list(dict.fromkeys(m for v in per_seed for m in v))
        pairs = {m: _mean_and_ci([v[m] for v in per_seed if m in v], level) for m in modalities}
        return {m: p[0] for m, p in pairs.items()}, {m: p[1] for m, p in pairs.items()}
    return _mean_and_ci(list(per_seed), level)


def _differences(ref: list, other: list):
    """reference - arm per shared seed: a list of numbers, or {modality: list} for dicts."""
    if ref and isinstance(ref[0], dict):
        modalities = list(dict.fromkeys(m for r in ref for m in r))
        return {
            m: [r[m] - o[m] for r, o in zip(ref, other) if m in r and m in o]
            for m in modalities
            if any(m in o for o in other)
        }
    return [r - o for r, o in zip(ref, other)]


def _summarise_differences(diffs, level: float):
    if isinstance(diffs, dict):
        pairs = {m: _mean_and_ci(d, level) for m, d in diffs.items() if d}
        return {m: p[0] for m, p in pairs.items()}, {m: p[1] for m, p in pairs.items()}
    return _mean_and_ci(diffs, level)


def _no_run_tables(dataset: str, root: Path) -> FileNotFoundError:
    return FileNotFoundError(
        f"no per-run tables of {dataset} in {root / RUNS_SUBDIR / dataset}: the geometry table reads each "
        f"final run's test table ({RUNS_SUBDIR}/<dataset>/<arm>/s<seed>_test.parquet, aofl.runs); "
        f"`{FINALS_COMMAND.format(dataset=dataset)}` writes them"
    )


def geometry_table(
    dataset: str,
    results_dir: str | os.PathLike | None = None,
    reference: str = "full",
    level: float = 0.95,
) -> pd.DataFrame:
    """The geometry of every arm's final runs on the test split, from the per-run tables: one row per
    arm with `variant` (the arm), `n_seeds`, `seeds`, `setting`, and for each of GEOMETRY_QUANTITIES
    its mean over seeds and `<q>_ci`, the t-interval [low, high] over seeds (per-modality ones as
    {modality: value} and {modality: [low, high]}); then `n_paired` (seeds shared with the reference)
    and `<q>_diff` / `<q>_diff_ci`: reference - arm paired by seed, with the t-interval of the paired
    differences (None on the reference's own row, or without the reference).

    wf1 in %, angles in degrees, theta_gt_phi_share a share (0-1) of the split's utterances per run,
    averaged over seeds. A FileNotFoundError, saying how to make them, without per-run tables."""
    root = resolve_results_dir(results_dir)
    runs = _run_tables(root, dataset)
    if runs.empty:
        raise _no_run_tables(dataset, root)
    geometry: dict[str, dict[int, dict]] = {}
    settings: dict[str, Any] = {}
    for _, run in runs.iterrows():
        table, meta = read_run_table(run["path"])
        geometry.setdefault(run["arm"], {})[int(run["seed"])] = _run_geometry(table, meta)
        settings.setdefault(run["arm"], meta.get("setting"))
    ref = geometry.get(reference)
    rows = []
    for arm in arm_order(geometry):
        seeds = sorted(geometry[arm])
        shared = [s for s in seeds if ref is not None and s in ref]
        paired = arm != reference and ref is not None
        row: dict[str, Any] = {
            "variant": arm,
            "n_seeds": len(seeds),
            "seeds": seeds,
            "setting": settings[arm],
            "n_paired": len(shared) if paired else None,
        }
        for q in GEOMETRY_QUANTITIES:
            row[q], row[f"{q}_ci"] = _summarise([geometry[arm][s][q] for s in seeds], level)
        for q in GEOMETRY_QUANTITIES:
            if paired and shared:
                diffs = _differences([ref[s][q] for s in shared], [geometry[arm][s][q] for s in shared])
                row[f"{q}_diff"], row[f"{q}_diff_ci"] = _summarise_differences(diffs, level)
            else:
                row[f"{q}_diff"] = row[f"{q}_diff_ci"] = None
        rows.append(row)
    frame = pd.DataFrame(rows)
    frame["n_paired"] = pd.Series([r["n_paired"] for r in rows], dtype=object)  # counts, not 2.0
    return frame


def geometry_long(table: pd.DataFrame) -> pd.DataFrame:
    """`geometry_table` with one row per arm, quantity and modality ("" for wf1): variant, quantity,
    modality, n_seeds, mean, low, high, n_paired, diff, diff_low, diff_high. For tables to read and sort."""
    rows = []
    for _, r in table.iterrows():
        for q in GEOMETRY_QUANTITIES:
            value, ci, diff, diff_ci = r[q], r[f"{q}_ci"], r[f"{q}_diff"], r[f"{q}_diff_ci"]
            by_modality = isinstance(value, dict)
            for m in value if by_modality else [""]:
                d = (diff or {}).get(m) if by_modality else diff
                d_ci = ((diff_ci or {}).get(m) if by_modality else diff_ci) or [math.nan, math.nan]
                lo, hi = ci[m] if by_modality else ci
                rows.append(
                    {
                        "variant": r["variant"],
                        "quantity": q,
                        "modality": m,
                        "n_seeds": r["n_seeds"],
                        "mean": value[m] if by_modality else value,
                        "low": lo,
                        "high": hi,
                        "n_paired": r["n_paired"],
                        "diff": math.nan if d is None else d,
                        "diff_low": d_ci[0],
                        "diff_high": d_ci[1],
                    }
                )
    columns = ["variant", "quantity", "modality", "n_seeds", "mean", "low", "high", "n_paired"]
    return pd.DataFrame(rows, columns=[*columns, "diff", "diff_low", "diff_high"])


def _modality_mean(value) -> float:
    """A per-modality {m: x} as its mean over modalities; a number as itself; NaN for none."""
    if isinstance(value, dict):
        xs = [v for v in value.values() if _is_number(v)]
        return float(np.mean(xs)) if xs else math.nan
    return float(value) if _is_number(value) else math.nan


_WITHOUT_AAC = ("no_aao", "no_are")  # arms whose α is a parameter no loss reads (aofl.model.VARIANTS)


def geometry_markdown(table: pd.DataFrame, reference: str = "full") -> str:
    """`geometry_table` as one compact Markdown table (RESULTS.md): per arm its seeds, WF1 with the t-interval
    over seeds, reference − arm in WF1 with its paired t-interval, and θ, φ, share θ > φ and α start → end,
    each the mean over modalities of the seed-mean (the per-modality values: `--geometry --json`)."""

    def num(x, fmt="{:.1f}"):
        return "–" if not _is_number(x) else fmt.format(x)

    lines = [
        f"| arm | setting | seeds | test WF1 [95% CI] | {reference} − arm, WF1 [95% CI] | θ (°) | φ (°) "
        "| share θ > φ | α start → end (°) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for _, r in table.iterrows():
        lo, hi = r["wf1_ci"]
        diff = r["wf1_diff"]
        dlo, dhi = r["wf1_diff_ci"] if r["wf1_diff_ci"] is not None else (math.nan, math.nan)
        diff_text = (
            ""
            if not _is_number(diff)
            else f"{num(diff, '{:+.1f}')} [{num(dlo, '{:+.1f}')}, {num(dhi, '{:+.1f}')}]"
        )
        theta, phi = _modality_mean(r["theta_mean"]), _modality_mean(r["phi_mean"])
        share = _modality_mean(r["theta_gt_phi_share"])
        a0, a1 = _modality_mean(r["alpha_start"]), _modality_mean(r["alpha_end"])
        alpha = "–" if not _is_number(a0) else f"{a0:.1f} → {a1:.1f}"
        if r["variant"] in _WITHOUT_AAC and _is_number(a0):
            alpha += " (unused: no L_AAC)"
        lines.append(
            f"| {r['variant']} | {r['setting'] or ''} | {r['n_seeds']} | {num(r['wf1'])} [{num(lo)}, {num(hi)}] "
            f"| {diff_text} | {num(theta)} | {num(phi)} | {num(share, '{:.2f}')} | {alpha} |"
        )
    return "\n".join(lines)


def paired_markdown(paired: pd.DataFrame, reference: str = "full") -> str:
    """`paired_differences` as one Markdown table (RESULTS.md): per variant its seeds, reference − variant
    with the bootstrap interval over test dialogues and seeds, the seeds the reference wins, the raw and
    Holm-corrected p-values of the t-test and the bootstrap, the difference detectable at 80% power and
    the verdict."""

    def p(raw, holm) -> str:
        return "–" if not _is_number(raw) else f"{_p(raw)} ({_p(holm)})"

    lines = [
        f"| {reference} − variant | seeds | difference [95% CI] | {reference} wins | t-test p (Holm) "
        "| bootstrap p (Holm) | detectable at 80% | verdict |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for _, r in paired.iterrows():
        ci = "" if not _is_number(r.get("low")) else f" [{r['low']:+.1f}, {r['high']:+.1f}]"
        power = "–" if not _is_number(r.get("detectable_80")) else f"{r['detectable_80']:.1f}"
        lines.append(
            f"| {r['variant']} | {r['n_seeds']} | {r['difference']:+.1f}{ci} | {r['wins']}/{r['n_seeds']} "
            f"| {p(r.get('t_p_value'), r.get('t_p_holm'))} | {p(r.get('bootstrap_p_value'), r.get('bootstrap_p_holm'))} "
            f"| {power} | {r['verdict']} |"
        )
    return "\n".join(lines)
