"""Evidence: the seeds of every variant, full - variant paired by seed, each arm's geometry and the CV studies.

The other pages show one checkpoint (seed 0); this one reads the results directory (`aofl.evidence`,
default `$AOFL_RESULTS_DIR` or the repository's results/), so a claim is shown with its spread. The
numbers are `python -m aofl results`'s: the same functions with the same defaults.
"""

from pathlib import Path

import pandas as pd
import streamlit as st

from aofl import evidence
from aofl.app import context, figures, geometry_view, widgets

REFERENCE = "full"


ctx = context.context()
st.title("Evidence")
root = evidence.resolve_results_dir()
found = [str(c) for c in evidence.campaigns(root)]
results_dir = found[0]
if len(found) > 1:  # e.g. results/curve: the final runs at the fair (curve-rule) studies' settings
    if "ev_campaign" not in st.session_state:  # first visit: the fair campaign when it has the dataset
        st.session_state["ev_campaign"] = str(evidence.opening_campaign(root, ctx.dataset))
    context.select_valid("ev_campaign", found)
    results_dir = st.segmented_control(
        "Campaign",
        found,
        key="ev_campaign",
        required=True,
        format_func=lambda c: f"{Path(c).relative_to(root.parent)}/",
        help="A campaign is one set of final runs, each at the settings its studies chose "
        "(the table's `params_from` names them). Seeds are paired within a campaign only. "
        f"`{evidence.FAIR_CAMPAIGN}/` holds the runs at the fair search's settings (both families the same "
        "effort, CV scored at the epoch count the final runs train); the page opens on it when it has the "
        "sidebar's dataset. `results/` holds the older, tilted search's campaign (and synthetic's).",
    )

try:
    names = figures.evidence_datasets(results_dir=results_dir)
except FileNotFoundError as e:  # nothing run yet: say what produces the files
    st.info(
        f"No seed results yet: {e}. Or set `{evidence.RESULTS_ENV}` to a results directory that has them."
    )
    st.stop()
except context.USER_ERRORS as e:  # a corrupt file: fixable, so a message, not a traceback
    st.error(f"Cannot read the results: {e}")
    st.stop()
with context.user_errors("Cannot read the results"):
    if not names:
        raise ValueError(f"{results_dir}/real_summary.json lists no dataset")
    if "ev_dataset" not in st.session_state:  # first visit: the sidebar's dataset when it has results
        st.session_state["ev_dataset"] = ctx.dataset if ctx.dataset in names else names[0]
    context.select_valid("ev_dataset", names)
    dataset = st.segmented_control("Dataset", names, key="ev_dataset", required=True)
    summary = figures.evidence_summary(dataset, results_dir=results_dir)
    variants = list(summary["variant"])
    if REFERENCE not in variants:
        raise ValueError(f"{dataset} has no `{REFERENCE}` runs in {results_dir}")
    # any variant can be the one the others are measured against (e.g. full with another setting)
    context.select_valid("ev_reference", [REFERENCE] + [v for v in variants if v != REFERENCE])
    reference = st.selectbox("Compare every variant with", variants, key="ev_reference")
    paired = figures.evidence_paired(dataset, reference, results_dir=results_dir)
counts = sorted({int(summary["n"].min()), int(summary["n"].max())})
st.caption(
    f"{dataset} test split · {'–'.join(map(str, counts))} seeds per variant · seed s of one variant is paired "
    f"with seed s of another · files in `{results_dir}` · CLI: `python -m aofl results --data {dataset}"
    f"{'' if results_dir == str(root) else f' --results-dir {results_dir}'}`"
)

st.subheader(f"Where `{reference}` earns its place")
for line in evidence.verdict_lines(paired, reference):
    st.markdown(f"- {line}")
st.caption(f"Rule: {evidence.NOISE_RULE}.")

st.subheader("Test weighted F1 over seeds")
widgets.show_figure(
    figures.evidence_seed_strip(dataset, results_dir=results_dir),
    figures.evidence_seeds(dataset, results_dir=results_dir),
    f"evidence_{dataset}_seeds",
    key="ev_seed_fig",
)
st.dataframe(
    summary,
    hide_index=True,
    key="ev_summary",
    column_config={
        c: st.column_config.NumberColumn(format="%.2f")
        for c in summary.columns
        if c.endswith(("_mean", "_std", "_wf1"))
    },
)
st.caption(
    "Mean ± std over seeds (std with ddof 1), in %; a seed has the same colour in every variant. `cv_wf1`: the "
    "cross-validated score of the setting a searched variant was trained with; the ablations reuse `full`'s "
    "setting (`params_from`)."
)

st.subheader(f"`{reference}` − variant, paired by seed")
widgets.show_figure(
    figures.evidence_paired_chart(dataset, reference, results_dir=results_dir),
    figures.evidence_seed_differences(dataset, reference, results_dir=results_dir),
    f"evidence_{dataset}_seed_differences",
    key="ev_paired_fig",
)
P_COLUMNS = ("t_p_value", "bootstrap_p_value", "p_holm", "t_p_holm", "bootstrap_p_holm")
st.dataframe(
    paired.drop(columns=["method"]),
    hide_index=True,
    key="ev_paired",
    column_config={
        **{c: st.column_config.NumberColumn(format="%+.2f") for c in ("difference", "low", "high")},
        **{c: st.column_config.NumberColumn(format="%.3f") for c in P_COLUMNS},
        **{c: st.column_config.NumberColumn(format="%.2f") for c in ("sd_diff", "detectable_80")},
    },
)
widgets.download_csv(
    paired, f"evidence_{dataset}_paired", key="dl_ev_paired", label="Download CSV (comparison)"
)
st.caption(
    f"Points of test weighted F1; right of zero, `{reference}` is ahead; hollow dots: single seeds. `p_holm`: "
    "the larger of the two Holm-corrected p-values (below 0.05: beyond noise); `sd_diff`: the per-seed sd of the "
    "difference; `detectable_80`: the difference these seeds detect at 80% power. Method: "
    + "; ".join(dict.fromkeys(paired["method"]))
    + "."
)
for line in evidence.power_lines(paired):
    st.markdown(f"- {line}")

st.subheader("Geometry per arm: θ, φ and α over seeds")
geometry_view.draw(dataset, "ev", reference, results_dir)

st.subheader("Cross-validated hyper-parameter studies")
with context.user_errors("Cannot read the studies"):
    studies = figures.evidence_studies(dataset, results_dir=results_dir)
if studies.empty:
    st.info(
        f"No exported study of {dataset} in `{results_dir}/studies/`. Export one with "
        f"`{evidence.STUDY_COMMAND}`."
    )
    st.stop()
st.dataframe(
    studies,
    hide_index=True,
    key="ev_studies",
    column_config={c: st.column_config.NumberColumn(format="%.2f") for c in ("best_cv", "best_cv_std")},
)
readable = studies[studies["problem"].isna()]
for problem in studies["problem"].dropna():
    st.warning(problem)
if readable.empty:
    st.stop()
study_names = list(readable["study"])
# the study whose setting the reference's runs in this campaign used, else the reference's own search
used = summary.set_index("variant")["study"].get(reference)
preferred = [n for n in study_names if n == used] or [n for n in study_names if n == f"{dataset}-{reference}"]
context.select_valid("ev_study", preferred + [n for n in study_names if n not in preferred])
study = st.selectbox("Study", study_names, key="ev_study")
with context.user_errors(f"Cannot read study {study}"):
    trials = figures.evidence_trials(study, results_dir=results_dir)
    best = figures.evidence_study_best(study, results_dir=results_dir)
row = readable.set_index("study").loc[study]
c = st.columns(4)
c[0].metric("Trials", f"{len(trials)}")
c[1].metric(
    "Complete / pruned / failed", " / ".join(str(int(row[k])) for k in ("complete", "pruned", "failed"))
)
c[2].metric("Folds", "?" if pd.isna(row["folds"]) else str(int(row["folds"])))
c[3].metric("CV WF1 of the chosen setting", "none yet" if best is None else f"{best['cv_mean']:.1f}")
widgets.show_figure(
    figures.evidence_study_history(study, results_dir=results_dir),
    trials,
    f"study_{study}",
    key="ev_study_fig",
)
if best is None:
    st.info(f"No trial of {study} has completed yet: there is no chosen setting.")
else:
    folds = ", ".join(f"{v:.1f}" for v in best["fold_scores"])
    st.markdown(
        f"**Chosen setting: trial {best['number']}**, CV WF1 {best['cv_mean']:.1f} ± {best['cv_std']:.1f} "
        f"(folds {folds}), final runs of {best['final_epochs']} epochs."
    )
    if best["fold_curves"]:  # curve rule: what CV scored is the recipe the final runs use
        widgets.show_figure(
            figures.evidence_fold_curves_chart(study, results_dir=results_dir),
            figures.evidence_fold_curves(study, results_dir=results_dir),
            f"study_{study}_fold_curves",
            key="ev_fold_curves_fig",
        )
        st.caption(
            f"Each fold trained all {len(best['fold_curves'][0])} epochs on the other folds and was scored on "
            f"its own held-out dialogues after every epoch. The trial's CV score is the fold mean at one "
            f"common epoch ({best['final_epochs']}), its peak, and the final runs train exactly that many "
            "epochs: no fold's own best epoch is picked."
        )
    edges = {b["name"]: b for b in best.get("on_bounds") or []}
    st.dataframe(
        [
            {
                "parameter": k,
                "value": str(v),
                "on a bound": f"{edges[k]['bound']} of {edges[k]['range']}" if k in edges else "",
            }
            for k, v in best["params"].items()
        ],
        hide_index=True,
        key="ev_best_params",
    )
    if "epochs" in edges:
        st.caption(
            f"A fold's chosen epoch ({edges['epochs']['value']}) sits at the search's epoch cap "
            f"({edges['epochs']['range'][1]}): the search may have stopped it early."
        )
    if edges:
        st.caption(
            "A value on a bound of the search space means the search did not look past it"
            + (
                "."
                if best["rule"] == "curve"
                else "; the curve-rule studies (issue #21) widen the bounds of lr, width and epochs."
            )
        )
    flags = " ".join(best["train_args"])
    st.caption("The final runs' command (one seed):")
    st.code(
        f"python -m aofl train --data {row['dataset']} --variant {row['variant']} {flags} --seed 0 --out OUT",
        language=None,
    )
with st.expander("Every trial"):
    st.dataframe(trials, hide_index=True, key="ev_trials")
st.caption(
    f"How a trial of this study is scored: {best['score_rule'] if best else 'see docs/method.md'}. A pruned "
    "trial's value is not a result, so it is not in the best-so-far line."
)
