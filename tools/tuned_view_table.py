"""Markdown table of issue #14's measurements, from results/tuned_view.json and results/tuned_aofl.json.

python tools/tuned_view_table.py   # prints the table RESULTS.md and the README quote
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def pct(values) -> str:
    v = 100 * np.asarray(values, float)
    if v.size == 1:
        return f"{v[0]:.1f}"
    return f"{v.mean():.1f} ± {v.std(ddof=1):.1f} ({', '.join(f'{x:.1f}' for x in v)})"


def main() -> int:
    ref = json.loads((ROOT / "results" / "tuned_view.json").read_text())
    aofl_path = ROOT / "results" / "tuned_aofl.json"
    runs = json.loads(aofl_path.read_text()) if aofl_path.exists() else {}
    names = [n for n in ("iemocap", "meld") if n in ref]
    rows = [
        ("logistic regression on `sentence` alone", lambda n: pct([ref[n]["lr_sentence"]])),
        ("logistic regression on `tuned` alone", lambda n: pct([ref[n]["lr_tuned"]])),
        ("bi-GRU reference, sentence+lexicon+tfidf (3 seeds)", lambda n: pct(ref[n]["bigru_without_tuned"])),
        ("bi-GRU reference, + tuned (3 seeds)", lambda n: pct(ref[n]["bigru_with_tuned"])),
    ]
    for variant in ("full", "baseline"):
        label = f"AO-FL `{variant}`, sentence+lexicon+tfidf+tuned (#13's chosen setting, 3 seeds)"

        def cell(n, variant=variant):
            v = [runs[k]["test_weighted_f1"] for k in sorted(runs) if k.startswith(f"{n}/{variant}/")]
            return pct(v) if v else "not run"

        rows.append((label, cell))
    rows.append(
        (
            "`python -m aofl data prepare NAME --views tuned`, wall time",
            lambda n: f"{ref[n]['prepare_seconds'] / 60:.0f} min",
        )
    )
    print("| test weighted F1 | " + " | ".join(n.upper() if n == "meld" else "IEMOCAP" for n in names) + " |")
    print("|---|" + "---|" * len(names))
    for label, f in rows:
        print(f"| {label} | " + " | ".join(f(n) for n in names) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
