"""Variants as their seeds: the comparison the Ablations and Overview pages and `compare --seeds` show.

A single checkpoint is one seed of several. Here each variant (experiment *arm*) is all its runs:
test WF1 per seed with the mean and a t-interval over seeds, θ/φ pooled over seeds with each seed's
median, α start → end per seed, and where one seed ranks among its arm's seeds by test WF1 (shown,
never used to choose anything).

Source: the per-run tables (`aofl.runs`, ``<results>/runs/<dataset>/<arm>/s<seed>_test.parquet``);
without them, the kept predictions' per-seed scores (`aofl.evidence.seed_scores`), which carry no
θ/φ/α (`SeedComparison.source` says which). Pure pandas: no torch, no Streamlit.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from . import evidence
from .alpha import ALPHA_LEARNED_TOL_DEG, alpha_learned
from .metrics import paired_t_test
from .runs import list_runs, read_run_table
from .teaching import setting_label

__all__ = [
    "CI_LEVEL",
    "PER_RUN",
    "MIXED",
    "KEPT_PREDICTIONS",
    "SeedComparison",
    "seed_runs",
    "seed_summary",
    "seed_rank",
    "rank_sentence",
    "pooled_angles",
    "seed_medians",
    "theta_phi_shares",
    "alpha_per_seed",
    "compare_seeds",
    "fallback_setting",
]

CI_LEVEL = 0.95
PER_RUN = "per-run tables"
KEPT_PREDICTIONS = "kept predictions (WF1 per seed only: θ, φ and α per seed are not kept)"
MIXED = "per-run tables where an arm's final runs are complete, kept predictions (WF1 only) for the others"
_RUN_COLUMNS = ["arm", "variant", "seed", "wf1", "accuracy", "setting", "study", "path"]


def fallback_setting(dataset: str, arm: str, params_from: str | None) -> str:
    """How a kept-predictions arm's setting was chosen: `*_3view_setting` arms took a setting chosen on
    other views and were preferred after seeing test; an arm trained with its own dataset's study (or
    `full`/`baseline`'s, the ablation protocol) is CV-chosen; no study at all means defaults."""
    if arm.endswith("_3view_setting"):
        return "test-informed"
    if not params_from:
        return "defaults"
    if params_from in ("full", "baseline") or params_from in (f"{dataset}-full", f"{dataset}-baseline"):
        return "cv"
    return "test-informed"  # another dataset's study or a hand-changed part of one


def seed_runs(dataset: str, results_dir: str | os.PathLike | None = None, split: str = "test") -> tuple:
    """(runs, source): one row per run (arm, variant, seed, wf1 %, accuracy %, setting, study, path,
    alpha_start, alpha_end) and which source they came from (PER_RUN, KEPT_PREDICTIONS or MIXED).

    As in `aofl.evidence`, an arm's per-run tables replace its kept predictions once they cover every
    seed those have: while a campaign of final runs is under way each arm is shown whole."""
    root = evidence.resolve_results_dir(results_dir)
    runs = list_runs(root, dataset)
    runs = runs[runs["split"] == split] if not runs.empty else runs
    kept = _kept_runs(dataset, root) if split == "test" else pd.DataFrame(columns=_KEPT_COLUMNS)
    if not runs.empty:
        out = runs.copy()
        for c in _RUN_COLUMNS + ["alpha_start", "alpha_end"]:
            if c not in out:
                out[c] = None
        out["seed"] = out["seed"].astype(int)
        if kept.empty:
            return out.reset_index(drop=True), PER_RUN
        take_runs = {
            a
            for a in set(out["arm"])
            if set(kept.loc[kept["arm"] == a, "seed"]) <= set(out.loc[out["arm"] == a, "seed"])
        }
        parts = [out[out["arm"].isin(take_runs)], kept[~kept["arm"].isin(take_runs)]]
        merged = pd.concat([p for p in parts if not p.empty], ignore_index=True)
        order = {a: i for i, a in enumerate(evidence.arm_order(merged["arm"]))}
        merged = merged.sort_values(["arm", "seed"], key=lambda c: c.map(order) if c.name == "arm" else c)
        source = PER_RUN if set(merged["arm"]) <= take_runs else MIXED
        return merged[[*_RUN_COLUMNS, "alpha_start", "alpha_end"]].reset_index(drop=True), source
    return kept, KEPT_PREDICTIONS


_KEPT_COLUMNS = [*_RUN_COLUMNS, "alpha_start", "alpha_end"]


def _kept_runs(dataset: str, root) -> pd.DataFrame:
    """The kept predictions' runs (WF1 per seed only) in seed_runs' columns; empty without them."""
    try:
        scores = evidence.seed_scores(dataset, root)
        summary = evidence.variant_summary(dataset, root).set_index("variant")
    except (ValueError, OSError):
        return pd.DataFrame(columns=[*_RUN_COLUMNS, "alpha_start", "alpha_end"])
    rows = []
    for r in scores.itertuples(index=False):
        study = summary.loc[r.variant, "params_from"] if r.variant in summary.index else None
        variant = r.variant.split("_3view_setting")[0].split("_32_epochs")[0]
        rows.append(
            {
                "arm": r.variant,
                "variant": variant,
                "seed": int(r.seed),
                "wf1": float(r.test_wf1),
                "accuracy": math.nan,
                "setting": fallback_setting(dataset, r.variant, study),
                "study": study,
                "path": None,
                "alpha_start": None,
                "alpha_end": None,
            }
        )
    return pd.DataFrame(rows, columns=[*_RUN_COLUMNS, "alpha_start", "alpha_end"])


def seed_summary(runs: pd.DataFrame, level: float = CI_LEVEL) -> pd.DataFrame:
    """One row per arm, in first-seen order: arm, variant, setting (words), n_seeds, wf1_mean, wf1_sd,
    ci_low, ci_high (t-interval of the mean over seeds; NaN for one seed), wf1_per_seed ("s0 62.1, ...")."""
    rows = []
    for arm, g in runs.groupby("arm", sort=False):
        g = g.sort_values("seed")
        wf1 = g["wf1"].to_numpy(dtype=float)
        _, low, high = paired_t_test(wf1, level)  # the t-interval of the mean of the seeds' scores
        rows.append(
            {
                "arm": arm,
                "variant": g["variant"].iloc[0],
                "setting": setting_label(g["setting"].iloc[0]),
                "n_seeds": len(g),
                "wf1_mean": float(wf1.mean()),
                "wf1_sd": float(wf1.std(ddof=1)) if len(wf1) > 1 else math.nan,
                "ci_low": low,
                "ci_high": high,
                "wf1_per_seed": ", ".join(f"s{s} {w:.1f}" for s, w in zip(g["seed"], wf1)),
            }
        )
    cols = ["arm", "variant", "setting", "n_seeds", "wf1_mean", "wf1_sd", "ci_low", "ci_high", "wf1_per_seed"]
    return pd.DataFrame(rows, columns=cols)


def seed_rank(runs: pd.DataFrame, arm: str, seed: int) -> tuple[int, int] | None:
    """(i, n): seed `seed` is the i-th best of the arm's n seeds by test WF1 (ties share the better
    rank); None when the arm or the seed has no run."""
    g = runs[runs["arm"] == arm]
    if g.empty or int(seed) not in set(g["seed"].astype(int)):
        return None
    mine = float(g.loc[g["seed"].astype(int) == int(seed), "wf1"].iloc[0])
    return int((g["wf1"] > mine).sum()) + 1, len(g)


def _ordinal(i: int) -> str:
    suffix = "th" if 10 <= i % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(i % 10, "th")
    return f"{i}{suffix}"


def rank_sentence(seed: int, rank: tuple[int, int] | None) -> str:
    """ "seed k, i-th of n seeds of this variant by test WF1" (or that its rank is unknown)."""
    if rank is None:
        return f"seed {seed}; its rank among this variant's seeds is unknown (no seed runs kept)"
    i, n = rank
    if n == 1:
        return f"seed {seed}, the only seed of this variant (a single-seed result)"
    return f"seed {seed}, {_ordinal(i)} of {n} seeds of this variant by test WF1"


def pooled_angles(runs: pd.DataFrame, arms=None) -> pd.DataFrame:
    """θ and φ of every utterance of every run, pooled over seeds: arm, seed, modality, theta, phi
    (degrees). Empty when the runs have no tables (kept predictions) or no split (baseline)."""
    frames = []
    for r in runs.itertuples(index=False):
        if (arms is not None and r.arm not in arms) or not isinstance(r.path, str):
            continue
        table, _ = read_run_table(r.path)
        for col in table.columns:
            if col.startswith("theta_") and f"phi_{col[6:]}" in table:
                m = col[6:]
                frames.append(
                    pd.DataFrame(
                        {
                            "arm": r.arm,
                            "seed": int(r.seed),
                            "modality": m,
                            "theta": table[col].to_numpy(dtype=float),
                            "phi": table[f"phi_{m}"].to_numpy(dtype=float),
                        }
                    )
                )
    if not frames:
        return pd.DataFrame(columns=["arm", "seed", "modality", "theta", "phi"])
    return pd.concat(frames, ignore_index=True)


def seed_medians(pooled: pd.DataFrame) -> pd.DataFrame:
    """Each seed's median θ and φ per arm and modality: arm, seed, modality, theta_median, phi_median."""
    if pooled.empty:
        return pd.DataFrame(columns=["arm", "seed", "modality", "theta_median", "phi_median"])
    g = pooled.groupby(["arm", "seed", "modality"], sort=False)
    return g[["theta", "phi"]].median().add_suffix("_median").reset_index()


def theta_phi_shares(pooled: pd.DataFrame) -> pd.DataFrame:
    """Share of utterances with θ > φ per arm and modality, pooled over seeds, with its range over seeds:
    arm, modality, n_seeds, share (pooled), share_min, share_max (per seed), theta_median, phi_median."""
    cols = ["arm", "modality", "n_seeds", "share", "share_min", "share_max", "theta_median", "phi_median"]
    if pooled.empty:
        return pd.DataFrame(columns=cols)
    p = pooled.assign(above=pooled["theta"] > pooled["phi"])
    per_seed = p.groupby(["arm", "modality", "seed"])["above"].mean()  # sorted: .loc by (arm, m) is fast
    rows = []
    for (arm, m), g in p.groupby(["arm", "modality"], sort=False):
        s = per_seed.loc[(arm, m)]
        rows.append(
            {
                "arm": arm,
                "modality": m,
                "n_seeds": len(s),
                "share": float(g["above"].mean()),
                "share_min": float(s.min()),
                "share_max": float(s.max()),
                "theta_median": float(g["theta"].median()),
                "phi_median": float(g["phi"].median()),
            }
        )
    return pd.DataFrame(rows, columns=cols)


def alpha_per_seed(runs: pd.DataFrame, tol: float = ALPHA_LEARNED_TOL_DEG) -> pd.DataFrame:
    """α start → end per arm, seed and modality from the runs' metadata, and whether it moved more than
    `tol` (the "learned" rule, `aofl.alpha`): arm, seed, modality, alpha_start_deg, alpha_end_deg, learned."""
    rows = []
    for r in runs.itertuples(index=False):
        start, end = r.alpha_start, r.alpha_end
        if not isinstance(start, dict) or not isinstance(end, dict):
            continue
        for m, s in start.items():
            e = float(end.get(m, np.nan))
            rows.append(
                {
                    "arm": r.arm,
                    "seed": int(r.seed),
                    "modality": m,
                    "alpha_start_deg": float(s),
                    "alpha_end_deg": e,
                    "learned": alpha_learned(float(s), e, tol),
                }
            )
    return pd.DataFrame(
        rows, columns=["arm", "seed", "modality", "alpha_start_deg", "alpha_end_deg", "learned"]
    )


@dataclass
class SeedComparison:
    """Everything the seeds view shows for some arms of one dataset (the CLI prints it as JSON)."""

    dataset: str
    source: str
    runs: pd.DataFrame
    summary: pd.DataFrame
    pooled: pd.DataFrame = field(default_factory=pd.DataFrame)
    medians: pd.DataFrame = field(default_factory=pd.DataFrame)
    shares: pd.DataFrame = field(default_factory=pd.DataFrame)
    alpha: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def single_seed(self) -> bool:
        return bool(len(self.summary)) and int(self.summary["n_seeds"].max()) <= 1

    def to_json(self) -> dict:
        def records(df):
            return [
                {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}
                for row in df.to_dict(orient="records")
            ]

        runs = self.runs[["arm", "variant", "seed", "wf1", "setting"]].copy()
        runs["rank"] = [
            "{}/{}".format(*seed_rank(self.runs, a, s)) for a, s in zip(runs["arm"], runs["seed"])
        ]
        return {
            "dataset": self.dataset,
            "source": self.source,
            "single_seed": self.single_seed,
            "ci_level": CI_LEVEL,
            "variants": records(self.summary),
            "runs": records(runs),
            "theta_phi": records(self.shares),
            "seed_medians": records(self.medians),
            "alpha": records(self.alpha),
            "alpha_learned_tolerance_deg": ALPHA_LEARNED_TOL_DEG,
        }


def compare_seeds(
    dataset: str, arms=None, results_dir: str | os.PathLike | None = None, angles: bool = True
) -> SeedComparison:
    """The seeds view of `arms` (all when None, in the order given) of one dataset."""
    runs, source = seed_runs(dataset, results_dir)
    if arms is not None:
        arms = list(arms)
        missing = [a for a in arms if a not in set(runs["arm"])]
        if missing:
            have = ", ".join(dict.fromkeys(runs["arm"])) or "none"
            raise ValueError(f"no seed runs of {', '.join(missing)} for {dataset} ({source}); it has: {have}")
        runs = pd.concat([runs[runs["arm"] == a] for a in arms], ignore_index=True)
    pooled = pooled_angles(runs) if angles and source in (PER_RUN, MIXED) else pd.DataFrame()
    return SeedComparison(
        dataset=dataset,
        source=source,
        runs=runs,
        summary=seed_summary(runs),
        pooled=pooled,
        medians=seed_medians(pooled) if not pooled.empty else seed_medians(pd.DataFrame()),
        shares=theta_phi_shares(pooled) if not pooled.empty else theta_phi_shares(pd.DataFrame()),
        alpha=alpha_per_seed(runs),
    )
