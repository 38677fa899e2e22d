"""`python -m aofl playground [--seeds 0-4] [--variant V] [--lambda-csr X] ... [--json]`: the app's Playground.

Trains the Playground's tiny model on its small synthetic dataset once per seed (the seed draws the data
and the initial weights) and prints each run's test weighted F1 and accuracy, then how far the seeds
spread (`aofl.playground_runs`): what the page's "Your runs this session" shows. `--json` prints
{"runs": [{run, setting, seed, test_wf1, test_acc, <settings>}], "spread": [{setting, runs, seeds, mean,
min, max, spread}], "reading": "..."}, scores in %.
"""

from __future__ import annotations

import json
import sys
from dataclasses import fields

__all__ = ["add_parser", "run"]


def add_parser(subparsers) -> None:
    from ..model import VARIANTS
    from ..playground import PlaygroundSpec

    p = subparsers.add_parser(
        "playground", help="the app's Playground: a tiny model on small synthetic data, per seed"
    )
    p.add_argument("--seeds", nargs="+", default=["0-2"], help="seeds: 0 1 2 or ranges 0-4 (default 0-2)")
    for f in fields(PlaygroundSpec):  # one flag per slider, with the page's defaults
        if f.name == "seed":
            continue
        flag = "--" + f.name.replace("_", "-")
        if f.name == "variant":
            p.add_argument(flag, default=f.default, choices=list(VARIANTS))
        else:
            p.add_argument(flag, type=type(f.default), default=f.default, help=f"default {f.default}")
    p.add_argument("--device", default="cpu", help="cpu (default), cuda or auto")
    p.add_argument("--json", action="store_true", help="print the runs, their spread and the reading as JSON")
    p.set_defaults(func=run)


def run(args) -> int:
    from dataclasses import asdict

    from .. import playground_runs as R
    from ..device import resolve_device
    from ..playground import PlaygroundSpec, train_and_evaluate
    from .common import json_records, parse_seeds

    settings = {f.name: getattr(args, f.name) for f in fields(PlaygroundSpec) if f.name != "seed"}
    device = str(resolve_device(args.device))
    records = []
    for seed in parse_seeds(args.seeds):
        spec = PlaygroundSpec(**settings, seed=seed)
        outcome = train_and_evaluate(spec, device)
        records.append(R.record(asdict(spec), outcome))
        r = records[-1]
        print(  # with --json on stderr: stdout stays one JSON document, the progress still shows
            f"seed {seed}: test WF1 {r['test_wf1']:.2f}  acc {r['test_acc']:.2f}  ({outcome['seconds']:.1f} s)",
            file=sys.stderr if args.json else sys.stdout,
            flush=True,
        )
    frame = R.runs_frame(records)
    reading = R.reading(frame)
    if args.json:
        report = {
            "runs": json_records(frame),
            "spread": json_records(R.spread_summary(frame)),
            "reading": reading,
        }
        print(json.dumps(report, indent=2))
        return 0
    print(reading)
    return 0
