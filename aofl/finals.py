"""Final runs: every arm of a study, several seeds, each leaving its per-run tables (`aofl.runs`).

An *arm* is a variant with a setting: `full` and its ablations take the split family's chosen trial
(`--study`), `baseline` its own family's; mechanism arms add flags to `full`'s setting:

* ``fixed_alpha``: the `fixed_alpha` variant (alpha frozen at its initial value);
* ``alpha_moves``: `full` with alpha's own learning rate (``--alpha-lr``, `ALPHA_MOVES_LR`);
* ``orthogonal_recon0``: `orthogonal` with its reconstruction weight at 0;
* ``orthogonal_recon_aac``: `orthogonal` with its reconstruction weight at full's lambda_aac.

Each run trains on the train split for the chosen trial's epoch count and keeps the last epoch (the
study's `train_args`), then scores test and valid once and writes
``<results>/runs/<dataset>/<arm>/s<seed>_{test,valid}.parquet``. A run is done when both files exist.

**The job queue** lives in an Optuna storage (`--storage`, any RDB URL; default a SQLite file in the
work directory), as the WAITING trials of a study named ``finals:<dataset>:<study>``. A worker claims
a job by moving its trial WAITING -> RUNNING, which the storage does atomically (Optuna's own way to
hand an enqueued trial to exactly one worker), and records a heartbeat while it trains. Started again,
a worker fails the jobs whose heartbeat went stale (their worker was killed) and enqueues every job
that has neither its files nor a live claim; the worker that takes such a job again continues its run
from the resume state of its last finished epoch (`train --resume`). So a killed worker loses at most an
epoch of its own run and nothing else, and several processes, on one machine or several sharing the
storage, never run the same job.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from .runs import run_path, write_run_table

__all__ = [
    "ALPHA_MOVES_LR",
    "ARMS",
    "Arm",
    "FinalsSpec",
    "arm_of",
    "job_name",
    "pending_jobs",
    "run_job",
    "work",
]

ALPHA_MOVES_LR = 1e-2  # alpha's own lr for `alpha_moves`: Adam steps its logit ~1e-2, ~0.3 deg, per step
SPLITS = ("test", "valid")


@dataclass(frozen=True)
class Arm:
    name: str
    variant: str
    family: str  # whose study sets it: "full" or "baseline"
    extra: tuple = ()  # flags added to the family's chosen setting ("{lambda_aac}" is filled in)


ARMS: dict[str, Arm] = {
    **{
        v: Arm(v, v, "full")
        for v in ("full", "no_aao", "no_cen", "no_are", "no_opr", "orthogonal", "fixed_alpha")
    },
    "baseline": Arm("baseline", "baseline", "baseline"),
    "alpha_moves": Arm("alpha_moves", "full", "full", ("--alpha-lr", repr(ALPHA_MOVES_LR))),
    "orthogonal_recon0": Arm("orthogonal_recon0", "orthogonal", "full", ("--lambda-rec", "0.0")),
    "orthogonal_recon_aac": Arm(
        "orthogonal_recon_aac", "orthogonal", "full", ("--lambda-rec", "{lambda_aac}")
    ),
}


def arm_of(name: str) -> Arm:
    if name not in ARMS:
        raise ValueError(f"unknown arm {name!r}; choose from {', '.join(ARMS)}")
    return ARMS[name]


def job_name(arm: str, seed: int) -> str:
    return f"{arm}/s{int(seed)}"


@dataclass
class FinalsSpec:
    data: str
    study: str  # the split family's study (e.g. iemocap-full); baseline's is `baseline_study`
    arms: list[str]
    seeds: list[int]
    results: Path = field(default_factory=lambda: Path("results"))
    studies: Path | None = None  # where the study exports live (default <results>/studies)
    baseline_study: str | None = None
    storage: str | None = None
    work: Path | None = None  # queue file and scratch checkpoints
    setting: str = "cv"  # how the studies' settings were chosen (recorded in every run's metadata)
    threads: int = 1
    device: str = "cpu"

    def __post_init__(self):
        self.results = Path(self.results)
        for a in self.arms:
            arm_of(a)
        if (
            self.baseline_study is None
        ):  # iemocap-full -> iemocap-baseline, iemocap-full-curve -> ...-baseline-curve
            head, sep, tail = self.study.rpartition("-full")
            self.baseline_study = f"{head}-baseline{tail}" if sep else self.study

    @property
    def studies_dir(self) -> Path:
        return Path(self.studies) if self.studies is not None else self.results / "studies"

    @property
    def work_dir(self) -> Path:
        if self.work is not None:
            return Path(self.work)
        base = Path(os.environ.get("AOFL_CACHE_DIR", Path.home() / ".cache" / "aofl"))
        return base / "finals" / self.data

    @property
    def storage_url(self) -> str:
        return self.storage or f"sqlite:///{(self.work_dir / 'queue.db').resolve()}"

    @property
    def queue_name(self) -> str:
        return f"finals:{self.data}:{self.study}"

    def jobs(self) -> list[tuple[str, int]]:
        """Seed-major: all arms of seed k before any of seed k+1, so a stopped queue leaves equal seeds."""
        return [(a, s) for s in self.seeds for a in self.arms]

    def done(self, arm: str, seed: int) -> bool:
        """Both tables exist. A table from another study's campaign is an error, never "done": one
        dataset's per-run tables are one campaign (aofl.evidence pairs them by seed)."""
        paths = [run_path(self.results, self.data, arm, seed, sp) for sp in SPLITS]
        if not all(p.exists() for p in paths):
            return False
        from .runs import read_run_meta

        want = self.study if arm_of(arm).family == "full" else self.baseline_study
        found = read_run_meta(paths[0]).get("study")
        if found not in (None, want):
            raise ValueError(
                f"{paths[0]} was trained from study {found}, not {want}: move {self.results / 'runs' / self.data} "
                f"away (or use another --results) before a campaign of final runs from another study"
            )
        return True


def _export(spec: FinalsSpec, family: str) -> dict:
    name = spec.study if family == "full" else spec.baseline_study
    path = spec.studies_dir / f"{name}.json"
    if not path.exists():
        raise FileNotFoundError(f"no study export {path} (python -m aofl tune ... writes it)")
    export = json.loads(path.read_text())
    if not export.get("best") or not export["best"].get("train_args"):
        raise ValueError(f"study export {path} has no best trial with train_args")
    return {"name": name, **export}


def train_argv(spec: FinalsSpec, arm_name: str, seed: int, out: Path) -> tuple[list[str], dict]:
    """The `python -m aofl train` argv of one job, and the export that set it."""
    arm = arm_of(arm_name)
    export = _export(spec, arm.family)
    params = export["best"].get("params", {})
    extra = [x.format(lambda_aac=params.get("lambda_aac", 1.0)) for x in arm.extra]
    argv = ["train", "--data", spec.data, "--variant", arm.variant, "--seed", str(seed), "--out", str(out)]
    # --recipe defaults: the study's flags on the built-in defaults, never on a shipped recipe
    argv += ["--recipe", "defaults", *export["best"]["train_args"], *extra]
    argv += ["--no-progress", "--no-dynamics", "--threads", str(spec.threads), "--device", spec.device]
    return argv, export


def run_job(spec: FinalsSpec, arm_name: str, seed: int, train_command, quiet: bool = True) -> dict:
    """Train one arm at one seed and write its per-run tables; returns the test table's metadata.

    `train_command(argv) -> exit code` runs `python -m aofl <argv>` (the CLI passes its own `main`):
    the run is exactly the `train` command a user would type, and this layer, below the command
    line, does not import it."""
    from .inference import run_inference
    from .metrics import accuracy, weighted_f1
    from .store.checkpoint import load_checkpoint
    from .store.resume import RESUME_FILENAME

    out = spec.work_dir / "runs" / arm_name / f"s{seed}"
    argv, export = train_argv(spec, arm_name, seed, out)
    sink = io.StringIO()
    with contextlib.redirect_stdout(sink) if quiet else contextlib.nullcontext():
        # a killed worker's half-trained run continues from its state (it ends exactly as an uninterrupted
        # run would); a state that is not this run's (other settings, unreadable) is refused: start over
        resumed = (out / RESUME_FILENAME).is_file() and train_command(argv + ["--resume"]) == 0
        code = 0 if resumed else train_command(argv)
    if code != 0:
        raise RuntimeError(f"python -m aofl {' '.join(argv)} exited {code}")
    model, meta = load_checkpoint(out, device=spec.device)
    from .data import load_dataset

    dataset = load_dataset(spec.data)
    cfg = model.config
    switches = cfg.switches
    alpha_end = {}
    alpha_start = {}
    if switches["split"]:
        import math

        start = 90.0 if switches["orthogonal"] else cfg.alpha_init_deg
        end = [math.degrees(a) for a in model.alpha().detach().cpu().tolist()]
        alpha_start = {m: float(start) for m in model.modalities}
        alpha_end = {m: float(a) for m, a in zip(model.modalities, end)}
    written = {}
    for split in SPLITS:
        res = run_inference(model, dataset, split)
        t = res.table
        labels, preds = t["label_id"].to_numpy(), t["prediction_id"].to_numpy()
        run_meta = {
            "dataset": spec.data,
            "arm": arm_name,
            "variant": cfg.variant,
            "seed": int(seed),
            "split": split,
            "wf1": round(100 * weighted_f1(labels, preds), 4),
            "accuracy": round(100 * accuracy(labels, preds), 4),
            "modalities": list(model.modalities),
            "label_names": list(dataset.label_names),
            "alpha_start": alpha_start,
            "alpha_end": alpha_end,
            "epochs": len(meta.get("history", [])),
            "setting": spec.setting,
            "study": export["name"],
            "train_args": argv[argv.index("--recipe") :],
            "command": "python -m aofl " + " ".join(argv),
            "train_seconds": meta.get("train_seconds"),
        }
        write_run_table(run_path(spec.results, spec.data, arm_name, seed, split), t, run_meta)
        written[split] = run_meta
    return written["test"]


# --------------------------------------------------------------------------------------- the queue


def _storage(spec: FinalsSpec, grace_period: int):
    import warnings

    import optuna
    from optuna import storages

    from .tune import _rdb_storage

    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    # the queue records heartbeats itself (a thread per claimed job), not through Study.optimize
    warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used")
    if spec.storage is None:
        spec.work_dir.mkdir(parents=True, exist_ok=True)
    url = spec.storage_url
    engine = {"connect_args": {"timeout": 120}} if url.startswith("sqlite") else None
    return _rdb_storage(
        storages,
        url,
        engine_kwargs=engine,
        heartbeat_interval=max(1, grace_period // 3),
        grace_period=grace_period,
    )


def _queue(spec: FinalsSpec, grace_period: int):
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = _storage(spec, grace_period)
    with contextlib.suppress(optuna.exceptions.DuplicatedStudyError):
        optuna.create_study(study_name=spec.queue_name, storage=storage, direction="maximize")
    return optuna.load_study(study_name=spec.queue_name, storage=storage), storage


def _job_of(trial) -> tuple[str, int] | None:
    job = trial.user_attrs.get("job")
    if not job:
        return None
    arm, seed = job.split("/s")
    return arm, int(seed)


def pending_jobs(spec: FinalsSpec) -> list[tuple[str, int]]:
    """The jobs without both per-run tables, in queue order."""
    return [(a, s) for a, s in spec.jobs() if not spec.done(a, s)]


def _refill(study, storage, spec: FinalsSpec, grace_period: int) -> None:
    """Fail stale claims, then enqueue every pending job that is neither waiting nor claimed."""
    from optuna.storages import fail_stale_trials
    from optuna.trial import TrialState

    from .tune import _fail_orphaned_trials

    fail_stale_trials(study)
    _fail_orphaned_trials(study, grace_period)
    live = {
        _job_of(t) for t in study.get_trials(deepcopy=False, states=(TrialState.WAITING, TrialState.RUNNING))
    }
    for arm, seed in pending_jobs(spec):
        if (arm, seed) not in live:
            study.enqueue_trial({}, user_attrs={"job": job_name(arm, seed)})


def _claim(study, storage, spec: FinalsSpec):
    """Claim the first waiting job of this spec (WAITING -> RUNNING is atomic in the storage).

    Two workers refilling at once may enqueue one job twice. A claim is kept only if no other trial of
    the same job is complete or held by a lower trial number; of two claims of one job, exactly the
    lower-numbered survives, whichever worker checks first."""
    from optuna.exceptions import UpdateFinishedTrialError
    from optuna.trial import TrialState

    wanted = set(spec.jobs())
    for t in sorted(study.get_trials(deepcopy=False, states=(TrialState.WAITING,)), key=lambda t: t.number):
        job = _job_of(t)
        if job not in wanted:
            continue
        try:
            if not storage.set_trial_state_values(t._trial_id, TrialState.RUNNING):
                continue
        except UpdateFinishedTrialError:
            continue
        rivals = [
            o
            for o in study.get_trials(deepcopy=False, states=(TrialState.RUNNING, TrialState.COMPLETE))
            if o.number != t.number and _job_of(o) == job
        ]
        if any(o.state == TrialState.COMPLETE or o.number < t.number for o in rivals):
            storage.set_trial_user_attr(t._trial_id, "duplicate", True)
            storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
            continue
        return t._trial_id, job
    return None


def _beat(storage, trial_id: int, stop: threading.Event, interval: float) -> None:
    while not stop.is_set():
        with contextlib.suppress(Exception):
            storage.record_heartbeat(trial_id)
        stop.wait(interval)


def work(
    spec: FinalsSpec,
    train_command,
    max_jobs: int | None = None,
    stop_after_s: float | None = None,
    grace_period: int = 180,
    log=print,
) -> list[dict]:
    """Run queued jobs until none is left (or `max_jobs` ran, or `stop_after_s` passed: no new job
    starts after it), each trained by `train_command` (see `run_job`). Returns the test metadata of the
    runs this worker finished."""
    from optuna.trial import TrialState

    study, storage = _queue(spec, grace_period)
    _refill(study, storage, spec, grace_period)
    started, finished = time.monotonic(), []
    while max_jobs is None or len(finished) < max_jobs:
        if stop_after_s is not None and time.monotonic() - started > stop_after_s:
            log("finals: time is up; no new job starts")
            break
        claimed = _claim(study, storage, spec)
        if claimed is None:
            break
        trial_id, (arm, seed) = claimed
        if spec.done(arm, seed):  # finished by a worker whose claim was failed as stale
            storage.set_trial_state_values(trial_id, TrialState.COMPLETE, [0.0])
            continue
        stop = threading.Event()
        beat = threading.Thread(target=_beat, args=(storage, trial_id, stop, max(1, grace_period // 3)))
        beat.daemon = True
        beat.start()
        t0 = time.monotonic()
        try:
            meta = run_job(spec, arm, seed, train_command)
        except BaseException:
            stop.set()
            with contextlib.suppress(Exception):
                storage.set_trial_state_values(trial_id, TrialState.FAIL)
            raise
        stop.set()
        beat.join()
        storage.set_trial_state_values(trial_id, TrialState.COMPLETE, [float(meta["wf1"])])
        finished.append(meta)
        log(
            f"finals: {spec.data} {job_name(arm, seed)} test WF1 {meta['wf1']:.2f} "
            f"({time.monotonic() - t0:.0f} s; {len(pending_jobs(spec))} jobs left)"
        )
        sys.stdout.flush()
    return finished
