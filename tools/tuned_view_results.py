"""Measure the `tuned` text view (issue #14) and write results/tuned_view.json.

Per dataset, every choice on the valid split, test scored once:
* ``lr_sentence`` / ``lr_tuned``: logistic regression on that one view (C chosen on valid);
* ``bigru_without_tuned`` / ``bigru_with_tuned``: the reference bi-GRU of
  tools/reference_baselines.py on sentence+lexicon+tfidf, and on those plus tuned (3 seeds);
* ``prepare_seconds``: the wall time `python -m aofl data prepare NAME --views tuned` took,
  read from the prepared cache (its per-model times are kept there too).

Needs the tuned view prepared first:

    AOFL_DATA_DIR=/work/shared/data python -m aofl data prepare iemocap --views tuned
    AOFL_DATA_DIR=/work/shared/data python tools/tuned_view_results.py --datasets iemocap [--seeds 0 1 2]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))

from reference_baselines import run_bigru, run_lr, summarise  # noqa: E402

from aofl.data import load_dataset  # noqa: E402
from aofl.data.real import DEFAULT_VIEWS, load_transcripts  # noqa: E402
from aofl.data.textviews import cache_paths  # noqa: E402


def prepare_info(name: str) -> dict:
    path = cache_paths(load_transcripts(name), ("tuned",))["tuned"]
    with np.load(path, allow_pickle=False) as z:
        models = json.loads(str(z["models"]))
        return {
            "prepare_seconds": float(z["seconds"]),
            "recipe": json.loads(str(z["recipe"])),
            "models": models,
            "cache": str(path),
        }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--datasets", nargs="+", default=["iemocap", "meld"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--out", default=str(ROOT / "results" / "tuned_view.json"))
    args = ap.parse_args()
    out_path = Path(args.out)
    result = json.loads(out_path.read_text()) if out_path.exists() else {}
    result["protocol"] = (
        "lr: C chosen on valid; bigru: epoch chosen on valid (tools/reference_baselines.py); "
        "test only scored; F1 in 0-1"
    )
    result["command"] = "python tools/tuned_view_results.py " + " ".join(sys.argv[1:])
    for name in args.datasets:
        entry = prepare_info(name)
        details = {}
        for view in ("sentence", "tuned"):
            print(f"{name} lr on {view}", flush=True)
            runs = run_lr(load_dataset(name, views=(view,)), [0])
            entry[f"lr_{view}"] = runs[0]["test_weighted_f1"]
            details[f"lr_{view}"] = runs
        for key, views in (
            ("bigru_without_tuned", DEFAULT_VIEWS),
            ("bigru_with_tuned", DEFAULT_VIEWS + ("tuned",)),
        ):
            print(f"{name} bigru on {'+'.join(views)}", flush=True)
            runs = run_bigru(load_dataset(name, views=views), args.seeds)
            entry[key] = [r["test_weighted_f1"] for r in runs]
            details[key] = {"views": list(views), "runs": runs, "summary": summarise(runs)}
        entry["details"] = details
        result[name] = entry
        out_path.parent.mkdir(parents=True, exist_ok=True)
        out_path.write_text(json.dumps(result, indent=2) + "\n")
        print(
            f"{name}: lr sentence {entry['lr_sentence']:.4f} tuned {entry['lr_tuned']:.4f}; bigru "
            f"{np.mean(entry['bigru_without_tuned']):.4f} -> {np.mean(entry['bigru_with_tuned']):.4f}",
            flush=True,
        )
    print(f"wrote {out_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
