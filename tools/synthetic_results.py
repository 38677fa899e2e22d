"""Print the README's synthetic results table from the shipped checkpoints.

    python tools/synthetic_results.py

Test weighted F1 / accuracy, the paired bootstrap 95% CI of (full - variant) on test WF1
(1000 utterance resamples), and the four disentanglement scores (linear CKA against the planted
factors), all measured now on the stored files.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from aofl.data import load_dataset  # noqa: E402
from aofl.evaluate import evaluate  # noqa: E402
from aofl.inference import run_inference  # noqa: E402
from aofl.metrics import paired_bootstrap  # noqa: E402
from aofl.store.checkpoint import load_checkpoint  # noqa: E402

ORDER = ["full", "no_aao", "no_cen", "no_are", "no_opr", "orthogonal", "baseline"]


def main() -> int:
    entries = {
        e["variant"]: e
        for e in json.loads((ROOT / "checkpoints" / "MANIFEST.json").read_text())
        if e["dataset"] == "synthetic"
    }
    data = load_dataset("synthetic")
    results = {}
    for v in ORDER:
        model, _ = load_checkpoint(ROOT / "checkpoints" / entries[v]["file"])
        inf = run_inference(model, data, "test")
        results[v] = (inf.table, evaluate(model, data, "test", result=inf))
    y = results["full"][0]["label_id"].to_numpy()
    full_pred = results["full"][0]["prediction_id"].to_numpy()
    dialogues = results["full"][0]["dialogue"].to_numpy()  # resample whole test dialogues
    print(
        "| variant | test WF1 | test acc | full − variant, WF1 (95% CI) | g→shared | g→specific | h→shared | h→specific |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for v in ORDER:
        table, res = results[v]
        d = res["disentanglement"]
        if v == "full":
            diff = "–"
        else:
            pb = paired_bootstrap(y, full_pred, table["prediction_id"].to_numpy(), groups=dialogues)
            diff = f"{100 * pb['difference']:+.2f} ({100 * pb['low']:+.2f}, {100 * pb['high']:+.2f})"
        print(
            f"| `{v}` | {100 * res['weighted_f1']:.2f} | {100 * res['accuracy']:.2f} | {diff} | "
            f"{d['shared_recovers_shared']:.3f} | {d['shared_recovers_specific']:.3f} | "
            f"{d['specific_recovers_shared']:.3f} | {d['specific_recovers_specific']:.3f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
