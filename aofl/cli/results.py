"""`python -m aofl results --data DATASET [--study NAME] [--geometry] [--json|--markdown]`: the evidence in the results files.

Without `--study`: each variant's test weighted F1 per seed and mean +- std, then reference - variant
paired by seed (`aofl.evidence.paired_differences`: a bootstrap over test dialogues and seeds, the
paired t-test over seeds, Holm over the dataset's comparisons) with a verdict per variant, what these
seeds can detect at 80% power, and the dataset's exported studies. With `--study`: that study's trials
(CV score, best so far) and its chosen setting. With `--geometry`: each arm's θ, φ, share of θ > φ and
α per modality over seeds, and reference - arm (`aofl.evidence.geometry_table`, from per-run tables).
Scores are in % and differences in points. `--json` prints {"dataset", "reference", "results_dir",
"variants": [...], "seeds": [...], "paired": [...], "verdict": [...], "noise_rule", "power": [...],
"studies": [...], "campaigns": [...] (subfolders with runs of the dataset, e.g. results/curve)}, or
{"study", "results_dir", "best", "trials": [...]}, or with `--geometry` a list of rows (keys variant, n_seeds, theta_mean, phi_mean, theta_gt_phi_share, alpha_start, alpha_end, ...),
NaN as null.
"""

from __future__ import annotations

import json

from .common import json_records, json_safe

__all__ = ["add_parser", "run"]


def _dataset_report(args, root) -> dict:
    from .. import evidence

    paired = evidence.paired_differences(args.data, args.reference, root, n_boot=args.n_boot)
    return {
        "dataset": args.data,
        "reference": args.reference,
        "results_dir": str(root),
        "variants": json_records(evidence.variant_summary(args.data, root)),
        "seeds": json_records(evidence.seed_scores(args.data, root)),
        "paired": json_records(paired),
        "verdict": evidence.verdict_lines(paired, args.reference),
        "noise_rule": evidence.NOISE_RULE,
        "power": evidence.power_lines(paired),
        "studies": list(evidence.list_studies(root, dataset=args.data)["study"]),
        # campaigns in subfolders with runs of this dataset (results/curve: the fair search's settings)
        "campaigns": [str(c) for c in evidence.campaigns(root, args.data)[1:]],
    }


def _print_dataset(report: dict) -> None:
    ref = report["reference"]
    print(f"{report['dataset']}: test weighted F1 (%) per seed  [{report['results_dir']}]")
    per_seed: dict[str, list[str]] = {}
    for r in report["seeds"]:
        per_seed.setdefault(r["variant"], []).append(f"s{r['seed']} {r['test_wf1']:.2f}")
    for v in report["variants"]:
        std = "n/a" if v["test_wf1_std"] is None else f"{v['test_wf1_std']:.1f}"
        cv = "" if v["cv_wf1"] is None else f"  CV {v['cv_wf1']:.1f}"
        print(
            f"  {v['variant']:<12s} {v['test_wf1_mean']:5.1f} ± {std:<4s} (n={v['n']}){cv}  "
            + "  ".join(per_seed.get(v["variant"], []))
        )
    print(
        f"\n{ref} − variant, paired by seed (points; p raw/Holm-corrected; 80%: the difference detectable "
        "at 80% power)"
    )
    for r in report["paired"]:
        ci = "" if r["low"] is None else f" [{r['low']:+.1f}, {r['high']:+.1f}]"
        ps = "  ".join(
            f"{name} p {r[key]:.3f}/{r[holm]:.3f}"
            for name, key, holm in (
                ("t", "t_p_value", "t_p_holm"),
                ("bootstrap", "bootstrap_p_value", "bootstrap_p_holm"),
            )
            if r[key] is not None
        )
        power = "" if r["detectable_80"] is None else f"  80%: {r['detectable_80']:.1f}"
        print(
            f"  {r['variant']:<12s} {r['difference']:+5.1f}{ci}  wins {r['wins']}/{r['n_seeds']}  {ps}{power}  "
            f"{r['verdict']}"
        )
    methods = list(dict.fromkeys(r["method"] for r in report["paired"]))
    if methods:
        print("  method: " + "; ".join(methods))
    print()
    for line in report["verdict"]:
        print(f"* {line.replace('`', '')}")
    print(f"  ({report['noise_rule']})")
    for line in report["power"]:
        print(f"* {line.replace('`', '')}")
    if report["studies"]:
        print(f"\nstudies: {', '.join(report['studies'])}  (show one: --study NAME)")
    for c in report["campaigns"]:
        print(f"another campaign has {report['dataset']} runs: {c}  (show it: --results-dir {c})")


def _geometry_report(args, root) -> list[dict]:
    from .. import evidence

    return json_records(evidence.geometry_table(args.data, root, args.reference))


def _print_geometry(rows: list[dict]) -> None:
    import pandas as pd

    from .. import evidence

    long = evidence.geometry_long(pd.DataFrame(rows))
    print("test split: mean over seeds [95% t-interval over seeds]; Δ: the reference − arm, paired by seed")
    print("(wf1 in %, angles in degrees, theta_gt_phi_share a share of the utterances)")
    for variant, part in long.groupby("variant", sort=False):
        print(f"\n{variant}  ({part['n_seeds'].iloc[0]} seeds)")
        for r in part.itertuples(index=False):
            name = r.quantity + (f" {r.modality}" if r.modality else "")
            ci = "" if pd.isna(r.low) else f" [{r.low:.2f}, {r.high:.2f}]"
            diff = ""
            if not pd.isna(r.diff):
                diff_ci = "" if pd.isna(r.diff_low) else f" [{r.diff_low:+.2f}, {r.diff_high:+.2f}]"
                diff = f"   Δ {r.diff:+.2f}{diff_ci} ({int(r.n_paired)} pairs)"
            print(f"  {name:<34s} {r.mean:7.2f}{ci}{diff}")


def _study_report(args, root) -> dict:
    from .. import evidence

    return {
        "study": args.study,
        "results_dir": str(root),
        "best": evidence.study_best(args.study, root),
        "trials": json_records(evidence.study_trials(args.study, root)),
    }


def _print_study(report: dict) -> None:
    print(f"study {report['study']}: CV weighted F1 (%) per trial  [{report['results_dir']}]")
    for t in report["trials"]:
        value = "   -  " if t["value"] is None else f"{t['value']:6.2f}"
        best = "" if t["best_so_far"] is None else f"  best so far {t['best_so_far']:.2f}"
        mark = "  <- chosen" if t["chosen"] else ""
        print(f"  {t['number']:>4}  {t['state']:<9s} {value}  folds {t['folds_done']}{best}{mark}")
    best = report["best"]
    if best is None:
        print("no complete trial yet: no chosen setting")
        return
    folds = ", ".join(f"{v:.1f}" for v in best["fold_scores"])
    print(
        f"chosen: trial {best['number']}, CV {best['cv_mean']:.1f} ± {best['cv_std']:.1f} (folds {folds}), "
        f"final epochs {best['final_epochs']}"
    )
    from .. import evidence

    curves = best.get("fold_curves") or []
    frame = evidence.fold_curves_frame(curves)
    mean = frame.loc[frame["fold"] == "mean", "wf1"].tolist()  # none when the folds differ in length
    if mean:
        print(
            f"fold-mean held-out curve ({len(curves)} folds, {len(mean)} epochs): "
            f"{mean[best['final_epochs'] - 1]:.1f} at the common epoch {best['final_epochs']}, "
            f"{mean[-1]:.1f} at the last (the curves: --json, best.fold_curves)"
        )
    edges = best.get("on_bounds") or []
    print(
        "on a bound of the search space: "
        + (", ".join(f"{b['name']} {b['value']:.4g} ({b['bound']} of {b['range']})" for b in edges) or "none")
    )
    print("  " + " ".join(best["train_args"]))


def run(args) -> int:
    from .. import evidence

    root = evidence.resolve_results_dir(args.results_dir)
    if args.geometry:
        if not args.data:
            raise ValueError("--geometry needs --data DATASET")
        if args.markdown:
            table = evidence.geometry_table(args.data, root, args.reference)
            print(evidence.geometry_markdown(table, args.reference))
            return 0
        report = _geometry_report(args, root)
        show = _print_geometry
    elif args.study:
        report = _study_report(args, root)
        show = _print_study
    elif args.data and args.markdown:
        paired = evidence.paired_differences(args.data, args.reference, root, n_boot=args.n_boot)
        print(evidence.paired_markdown(paired, args.reference))
        return 0
    elif args.data:
        report = _dataset_report(args, root)
        show = _print_dataset
    else:
        raise ValueError(f"give --data (one of: {', '.join(evidence.datasets(root))}) or --study NAME")
    if args.json:
        print(json.dumps(json_safe(report), indent=2, allow_nan=False))
    else:
        show(report)
    return 0


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "results",
        help="the evidence in results/: test WF1 per seed, full − variant paired by seed, the CV studies",
    )
    p.add_argument("--data", default=None, help="dataset in real_summary.json (iemocap, meld)")
    p.add_argument(
        "--study", default=None, help="show this exported study (results/studies/NAME.json) instead"
    )
    p.add_argument(
        "--geometry",
        action="store_true",
        help="each arm's θ, φ, share of θ > φ and α per modality over seeds, and the reference − arm "
        "(reads the per-run tables results/runs/DATASET/, written by `python -m aofl finals`)",
    )
    p.add_argument(
        "--markdown",
        action="store_true",
        help="one Markdown table, as in RESULTS.md: the paired comparisons (with --data), or the geometry "
        "(with --geometry; angles averaged over modalities)",
    )
    p.add_argument("--reference", default="full", help="the variant the others are compared with")
    p.add_argument(
        "--n-boot",
        type=int,
        default=1000,
        help="bootstrap resamples of the paired comparison (1000: RESULTS.md)",
    )
    p.add_argument(
        "--results-dir",
        default=None,
        help="results directory (default $AOFL_RESULTS_DIR, else the repo's results/)",
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run)
