"""Issue #14's whole measurement, resumable: prepare the tuned view, the reference numbers, AO-FL on it.

Per dataset (all views are prepared first, then steps 2 and 3 run):
1. ``python -m aofl data prepare NAME --views tuned`` (resumes per fold model; skipped when cached);
2. ``tools/tuned_view_results.py --datasets NAME`` (LR and bi-GRU, into results/tuned_view.json);
3. AO-FL ``full`` and ``baseline`` with the settings issue #13's searches chose (the commands in
   results/NAME_runs.json), on sentence+lexicon+tfidf+tuned, seeds 0-2, into
   results/tuned_aofl.json (a finished run is skipped on restart).

    AOFL_DATA_DIR=/work/shared/data python tools/run_tuned_experiments.py --datasets iemocap meld
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VIEWS = ["sentence", "lexicon", "tfidf", "tuned"]


def run(cmd: list[str], log) -> str:
    print("$ " + shlex.join(cmd), file=log, flush=True)
    t0 = time.time()
    p = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=log, text=True)
    print(p.stdout[-4000:], file=log, flush=True)
    print(f"# exit {p.returncode} after {time.time() - t0:.0f} s", file=log, flush=True)
    if p.returncode:
        raise SystemExit(f"failed: {shlex.join(cmd)}")
    return p.stdout


def chosen_command(name: str, variant: str) -> list[str]:
    runs = json.loads((ROOT / "results" / f"{name}_runs.json").read_text())
    args = shlex.split(runs[f"{variant}/s1"]["command"])[3:]  # drop "python -m aofl"
    out, skip = [], False
    for a in args:
        if skip:
            skip = False
            continue
        if a in ("--seed", "--out"):
            skip = True
            continue
        if a in ("--half", "--no-progress"):
            continue
        out.append(a)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--datasets", nargs="+", default=["iemocap", "meld"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--variants", nargs="+", default=["full", "baseline"])
    ap.add_argument(
        "--steps",
        nargs="+",
        default=["prepare", "reference", "aofl"],
        choices=["prepare", "reference", "aofl"],
        help="which of the three steps to run",
    )
    ap.add_argument("--runs-dir", default="/tmp/aofl_tuned_runs")
    ap.add_argument("--log", default=str(ROOT / "results" / "tuned_log.txt"))
    args = ap.parse_args()
    py = sys.executable
    out_path = ROOT / "results" / "tuned_aofl.json"
    result = json.loads(out_path.read_text()) if out_path.exists() else {}
    with open(args.log, "a") as log:
        # every dataset's view first (the long part), then the measurements
        for name in args.datasets if "prepare" in args.steps else []:
            run([py, "-m", "aofl", "data", "prepare", name, "--views", "tuned", "--no-progress"], log)
        reference = ROOT / "results" / "tuned_view.json"
        for name in args.datasets if "reference" in args.steps else []:
            if name not in (json.loads(reference.read_text()) if reference.exists() else {}):
                run([py, "tools/tuned_view_results.py", "--datasets", name], log)
        for name in args.datasets if "aofl" in args.steps else []:
            for variant in args.variants:
                for seed in args.seeds:
                    key = f"{name}/{variant}/s{seed}"
                    if key in result:
                        continue
                    cmd = [
                        "-m",
                        "aofl",
                        *chosen_command(name, variant),
                        "--seed",
                        str(seed),
                        "--out",
                        f"{args.runs_dir}/{name}/{variant}/s{seed}",
                        "--views",
                        *VIEWS,
                        "--no-progress",
                        "--json",
                    ]
                    text = run([py, *cmd], log)
                    summary = json.loads(text[text.index("{") :])
                    result[key] = {
                        "command": "python " + shlex.join(cmd),
                        "views": VIEWS,
                        "valid_weighted_f1": summary["valid"]["weighted_f1"],
                        "test_weighted_f1": summary["test"]["weighted_f1"],
                        "test_accuracy": summary["test"]["accuracy"],
                    }
                    # re-read before writing: another driver may have added runs meanwhile
                    merged = json.loads(out_path.read_text()) if out_path.exists() else {}
                    merged[key] = result[key]
                    out_path.write_text(json.dumps(merged, indent=2) + "\n")
    print(f"wrote {out_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
