"""Print a markdown table of the training dynamics of checkpoints (RESULTS.md, "Training dynamics").

    python tools/dynamics_table.py NAME=PATH [NAME=PATH ...] [--json OUT]

Each row is `aofl.dynamics_frame.dynamics_summary` of the checkpoint's history: the clipping factor
on CE's gradient (1 = unclipped), CE's share of the shared/specific heads' summed gradient norms, the
median cosine of each auxiliary term's gradient with CE's on the heads, and the last epoch's mean
theta, phi and alpha over modalities.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from aofl.dynamics_frame import dynamics_summary  # noqa: E402
from aofl.store.checkpoint import read_metadata  # noqa: E402


def fmt(v, pattern="{:.2f}"):
    return "–" if v is None else pattern.format(v)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("checkpoints", nargs="+", metavar="NAME=PATH")
    ap.add_argument("--json", default=None, help="also write the summaries as JSON")
    args = ap.parse_args()
    rows = {}
    for item in args.checkpoints:
        name, _, path = item.partition("=")
        meta = read_metadata(Path(path))
        rows[name] = {
            **dynamics_summary(meta.get("history") or []),
            "best_epoch": meta.get("best_epoch"),
            "command": meta.get("command"),
        }
    terms = sorted({t for r in rows.values() for t in r["cos_ce_heads_median"]})
    print(
        "| run | epochs | clip factor on CE, epochs 1–5 / mean | CE share of heads' gradient, epoch 1 / median | "
        + " | ".join(f"cos({t}, CE) on heads, median" for t in terms)
        + " | θ / φ / α last epoch (°) |"
    )
    print("|---|---|---|---|" + "---|" * len(terms) + "---|")
    for name, r in rows.items():
        print(
            f"| {name} | {r['epochs']} | {fmt(r['clip_factor_early'])} / {fmt(r['clip_factor_mean'])} | "
            f"{fmt(r['ce_share_heads_first'])} / {fmt(r['ce_share_heads_median'])} | "
            + " | ".join(fmt(r["cos_ce_heads_median"].get(t), "{:+.2f}") for t in terms)
            + f" | {fmt(r['theta_last'], '{:.0f}')} / {fmt(r['phi_last'], '{:.0f}')} / {fmt(r['alpha_last'], '{:.0f}')} |"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1, default=float) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
