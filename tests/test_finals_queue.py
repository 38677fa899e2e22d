"""The finals job queue hands each job to exactly one worker, without training anything.

A regression test: on SQLite, Optuna's WAITING -> RUNNING claim read the state outside a write lock, so
two workers could both claim one trial; CI once saw a worker crash completing a job the other had
finished. Three processes race over a queue in which every job is enqueued twice."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

RACE = r"""
import json, sys
from pathlib import Path
from optuna.trial import TrialState
from aofl.finals import FinalsSpec, _claim, _queue

tmp = Path(sys.argv[1])
spec = FinalsSpec(data="synthetic", study="synthetic-full", arms=["full", "no_aao", "no_cen"],
                  seeds=list(range(4)), results=tmp / "results", work=tmp / "work")
study, storage = _queue(spec, grace_period=180)
ran = []
while (claimed := _claim(study, storage, spec)) is not None:
    trial_id, job = claimed
    ran.append("%s/s%d" % job)
    storage.set_trial_state_values(trial_id, TrialState.COMPLETE, [0.0])  # raises if another finished it
print(json.dumps(ran))
"""


def test_racing_workers_claim_every_job_exactly_once(tmp_path):
    import json

    from aofl.finals import FinalsSpec, _queue, job_name

    spec = FinalsSpec(
        data="synthetic",
        study="synthetic-full",
        arms=["full", "no_aao", "no_cen"],
        seeds=list(range(4)),
        results=tmp_path / "results",
        work=tmp_path / "work",
    )
    study, _ = _queue(spec, grace_period=180)
    for arm, seed in spec.jobs():
        for _ in range(2):  # as two workers refilling at once could
            study.enqueue_trial({}, user_attrs={"job": job_name(arm, seed)})
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", RACE, str(tmp_path)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err[-800:] for _, err in outs]
    ran = sorted(job for out, _ in outs for job in json.loads(out.strip().splitlines()[-1]))
    assert ran == sorted(job_name(a, s) for a, s in spec.jobs())
