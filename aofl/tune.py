"""Hyper-parameter search: an Optuna study over grouped k-fold cross-validation of the training dialogues.

Protocol (docs/method.md, "How settings are chosen"):
* folds from `aofl.cv` (IEMOCAP: leave one session out over Sessions 1-4; MELD / synthetic: k folds
  of training dialogues). The dataset's valid and test splits are never read.
* a trial trains one model per fold on the other folds, early-stopped on the held-out fold, and
  scores the held-out fold's weighted F1 at that best epoch; the trial's value is the mean over
  folds. Every configuration shares this optimism, so it ranks them fairly; the per-fold best
  epochs also give the epoch count of the final runs (the median, `final_epochs`).
* TPE sampler; a median pruner compares the running mean after each fold with other trials' at
  the same fold (folds always run in the same order), so a poor setting stops after one fold.
* the study lives in SQLite under the output directory (or any Optuna RDB URL): a killed search
  resumes; each finished fold is also kept as a small JSON file, so a retried trial skips it.
  Heartbeats mark a killed worker's trial as failed, and it is retried with the same parameters.

`baseline` searches the shared training parameters; the split variants also search the AO-FL ones.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import statistics
import sys
import time
import zlib
from dataclasses import dataclass, fields
from pathlib import Path

from .cv import fold_dataset, grouped_folds
from .data.conversation import ConversationSet
from .recipes import (  # what every study starts from: train's built-in defaults
    CONFIGS,
    SHARED_DEFAULTS,
    SHARED_PARAMS,
    SPLIT_DEFAULTS,
    SPLIT_PARAMS,
)
from .tune_space import on_bounds, search_space, suggest_params

__all__ = [
    "SEARCH_EPOCHS",
    "suggest_params",
    "search_space",
    "on_bounds",
    "default_params",
    "configs_for",
    "train_args",
    "run_fold",
    "TuneSpec",
    "open_study",
    "start_params",
    "optimize",
    "study_report",
    "final_epochs",
]

STUDY_PARAMS = (*SHARED_PARAMS, *SPLIT_PARAMS)  # the searched settings, in the order train_args writes them
SEARCH_EPOCHS = 40  # the cap of a fold's run; early stopping (patience 8, after any warm-up) ends most sooner
PATIENCE = 8

# How a trial is scored. "fold_best" (the studies of issue #13): each fold early-stops and scores its own
# best epoch; a trial is the mean of those per-fold maxima. That rewards volatile learning curves, and the
# final runs then train one fixed epoch count that no fold was scored at. "curve" (issue #21): every fold
# trains the whole epoch cap and keeps its per-epoch held-out WF1; a trial's score is the fold-mean curve
# at one common epoch (its peak), and that epoch count is what the final runs train for. No pruner: every
# trial runs every fold to the cap, so two families with the same number of trials get the same number
# of fold runs (a relative pruner starved `baseline`, whose trials were alike: 15 of 16 pruned).
RULES = ("curve", "fold_best")
SCORE_RULES = {
    "fold_best": "mean over folds of the held-out fold's weighted F1 at its own best epoch (early stopping, "
    "patience 8); final runs train the median of the folds' best epochs",
    "curve": "every fold trains the whole epoch cap; the score is the fold-mean held-out weighted F1 curve at "
    "its peak epoch, one epoch common to all folds, and the final runs train exactly that many epochs; no pruning",
}
CURVE_EPOCHS = 60  # the cap of the curve rule's runs (the fold_best studies' best epochs hit 40)

# full also starts from the lead of issue #13's leave-one-session-out probe: all three weights 0.1
SPLIT_LEAD = {**SPLIT_DEFAULTS, "lambda_cen": 0.1, "lambda_aac": 0.1, "lambda_csr": 0.1}


def start_params(report: dict, variant: str) -> dict:
    """The best setting of an exported study (`tune --export`), as a trial to seed another study with:
    the same variant's search space, so a setting found on one dataset can start the search on another."""
    best = report.get("best") if isinstance(report, dict) else None
    if not best or "params" not in best:
        raise ValueError("the study export has no best trial to start from")
    if report.get("variant") not in (None, variant):
        raise ValueError(f"the study export is for variant {report.get('variant')!r}, not {variant!r}")
    keys = set(default_params(variant)[0])
    params = best["params"]
    missing, extra = keys - set(params), set(params) - keys
    if missing or extra:
        raise ValueError(
            f"the study export's parameters do not match {variant!r}'s search space "
            f"(missing {sorted(missing)}, unexpected {sorted(extra)})"
        )
    return dict(params)


def default_params(variant: str) -> list[dict]:
    """The trials each study is seeded with (see SHARED_DEFAULTS)."""
    if variant == "baseline":
        return [dict(SHARED_DEFAULTS)]
    return [{**SHARED_DEFAULTS, **SPLIT_DEFAULTS}, {**SHARED_DEFAULTS, **SPLIT_LEAD}]


def configs_for(
    dataset: ConversationSet,
    variant: str,
    params: dict,
    seed: int = 0,
    epochs: int = SEARCH_EPOCHS,
    select: str = "best_valid",
    dynamics: bool = False,
    device: str = "cpu",
):
    """(AOFLConfig, TrainConfig) of a parameter set; class weights from `dataset`'s train split."""
    from .model import AOFLConfig
    from .train import TrainConfig, class_weights, model_config_for

    # a study parameter is a field of one config (aofl/recipes); class_weights' value is a switch
    model_keys = {f.name for f in fields(AOFLConfig)} - {"class_weights"}
    overrides = {k: v for k, v in params.items() if k in STUDY_PARAMS and k in model_keys}
    if params.get("class_weights"):
        overrides["class_weights"] = class_weights(dataset)
    config = model_config_for(dataset, variant, **overrides)
    train_keys = {f.name for f in fields(TrainConfig)}
    train_kw = {k: v for k, v in params.items() if k in STUDY_PARAMS and k in train_keys}
    tc = TrainConfig(
        epochs=epochs,
        patience=PATIENCE,
        seed=seed,
        device=device,
        progress=False,
        dynamics=dynamics,
        select=select,
        patience_after_warmup=bool(params.get("warmup_epochs")),
        **train_kw,
    )
    return config, tc


def train_args(params: dict, epochs: int) -> list[str]:
    """`python -m aofl train` flags that train with `params` for `epochs` and keep the last epoch
    (the final runs: the epoch count comes from cross-validation, not from the valid split)."""
    from .settings import flag_args

    return ["--epochs", str(epochs), "--select", "last", *flag_args(CONFIGS, params, STUDY_PARAMS)]


def _key(payload: dict) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:20]


def run_fold(
    dataset: ConversationSet,
    folds: list[list[int]],
    i: int,
    variant: str,
    params: dict,
    seed: int = 0,
    cache_dir: Path | None = None,
    device: str = "cpu",
    epochs: int = SEARCH_EPOCHS,
    rule: str = "fold_best",
) -> dict:
    """Train on every fold but i and score fold i: {"score", "best_epoch", "epochs_run", "seconds", "curve"}.
    fold_best: early-stopped on fold i, scored at its best epoch. curve: trained for all `epochs`, with
    fold i's weighted F1 after every epoch in "curve" (a diverged run's missing epochs count as 0).
    With cache_dir, a finished fold is read back instead of retrained (keyed by everything it depends on)."""
    from .train import train

    payload = {
        "data": dataset.fingerprint(),
        "folds": folds,
        "i": i,
        "variant": variant,
        "params": params,
        "seed": seed,
        "epochs": epochs,
        "patience": PATIENCE,
    }
    if rule != "fold_best":  # the fold_best studies' cache keys stay as they were
        payload["rule"] = rule
    key = _key(payload)
    path = None if cache_dir is None else Path(cache_dir) / f"{key}.json"
    if path is not None and path.exists():
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            pass  # a torn file: train again
    fold = fold_dataset(dataset, folds[i])
    select = "last" if rule == "curve" else "best_valid"
    config, tc = configs_for(fold, variant, params, seed=seed, device=device, epochs=epochs, select=select)
    result = train(fold, config, tc)
    curve = [float(h["valid_weighted_f1"]) for h in result.history]
    out = {
        "score": float(result.best_valid["weighted_f1"]),
        "best_epoch": int(result.best_epoch),
        "epochs_run": len(result.history),
        "seconds": round(result.seconds, 2),
        "curve": curve + [0.0] * (epochs - len(curve)) if rule == "curve" else curve,
    }
    if rule == "curve":  # the fold's own peak, for the record; the trial is scored at the common epoch
        out["best_epoch"] = 1 + max(range(len(curve)), key=curve.__getitem__) if curve else 0
        out["score"] = max(curve) if curve else 0.0
    if path is not None:
        from .io.atomic import atomic_write_text

        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps(out))
    return out


def common_epoch(fold_curves: list[list[float]]) -> tuple[int, float, list[float]]:
    """The curve rule: (epoch, score, per-fold values) at the peak of the fold-mean curve; the earliest
    epoch among ties. Epochs count from 1."""
    if not fold_curves or not all(fold_curves):
        raise ValueError("common_epoch needs one non-empty curve per fold")
    n = min(len(c) for c in fold_curves)
    mean = [statistics.fmean(c[e] for c in fold_curves) for e in range(n)]
    best = max(range(n), key=lambda e: (mean[e], -e))
    return best + 1, mean[best], [c[best] for c in fold_curves]


def final_epochs(best_epochs: list[int], cap: int = SEARCH_EPOCHS) -> int:
    """The final runs' epoch count: the median of the folds' best epochs (rounded up)."""
    return int(math.ceil(statistics.median(best_epochs))) if best_epochs else cap


@dataclass
class TuneSpec:
    data: str
    variant: str
    trials: int
    folds: int
    out: Path
    storage: str | None = None
    seed: int = 0
    worker: int = 0
    epochs: int = SEARCH_EPOCHS  # the cap of every fold's run
    start_from: tuple = ()  # extra settings a new study is seeded with (e.g. another dataset's best)
    views: tuple = ()  # iemocap/meld text views; () = the dataset's default views
    rule: str = "fold_best"  # how a trial is scored (RULES); the CLI's default is "curve"

    def __post_init__(self):
        from .data.real import DEFAULT_VIEWS

        if self.rule not in RULES:
            raise ValueError(f"unknown score rule {self.rule!r}; choose from {', '.join(RULES)}")
        self.views = tuple(self.views)
        if self.views == DEFAULT_VIEWS:  # spelled out or not, the default views are one study
            self.views = ()

    @property
    def dataset(self):
        """The study's `DatasetName`: the dataset, with its views when they are not the default ones."""
        from .data import DatasetName

        return DatasetName.from_parts(self.data, self.views or None)

    @property
    def data_tag(self) -> str:
        """The dataset's name as studies print it: `iemocap`, `iemocap+sentence+lexicon+tfidf+tuned`."""
        return str(self.dataset)

    @property
    def study_name(self) -> str:
        """`<data>-<arm>` (`variant` is the arm); a curve-rule study is another study of the same
        pair: `...-curve` (`aofl.data.names.study_name`)."""
        from .data.names import study_name

        return study_name(self.dataset, self.variant, curve=self.rule == "curve")

    @property
    def storage_url(self) -> str:
        return self.storage or f"sqlite:///{(Path(self.out) / 'study.db').resolve()}"


def _rdb_storage(storages, url: str, attempts: int = 5, **kwargs):
    """RDBStorage, tolerant of another process creating the same schema at the same moment.

    Two workers (or a worker and a reader) opening a new SQLite study at once both find no
    tables and both run CREATE TABLE; the loser fails with "table ... already exists".
    The schema is then in place, so trying again succeeds.
    """
    import time

    from sqlalchemy.exc import OperationalError

    for attempt in range(attempts):
        try:
            storage = storages.RDBStorage(url, **kwargs)
            engine = getattr(storage, "engine", None)  # (a test's stand-in storage has none)
            if engine is not None and engine.name == "sqlite":
                _serialize_sqlite(engine)
            return storage
        except OperationalError as err:
            if "already exists" not in str(err) or attempt == attempts - 1:
                raise
            time.sleep(0.2 * (attempt + 1))


def _serialize_sqlite(engine) -> None:
    """Make every SQLite transaction take the write lock at its start (``BEGIN IMMEDIATE``).

    Optuna hands a WAITING trial to one worker by reading its state and then writing RUNNING in one
    transaction (``SELECT ... FOR UPDATE`` elsewhere). SQLite has no row locks, and Python's sqlite3
    opens the transaction only at the first write, so two workers could both read WAITING and both
    claim the trial: the finals queue ran one job twice and a worker then failed on a trial the other
    had finished. With the lock taken at BEGIN, the second reader waits and then sees RUNNING.
    This is SQLAlchemy's documented recipe for pysqlite transactions."""
    from sqlalchemy import event

    @event.listens_for(engine, "connect")
    def _driver_begins_nothing(dbapi_connection, _record):
        dbapi_connection.isolation_level = None  # sqlite3's own implicit BEGIN off; the listener below begins

    @event.listens_for(engine, "begin")
    def _begin_immediate(connection):
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    engine.dispose()  # connections opened while the schema was created lack the listener


def open_study(spec: TuneSpec, grace_period: int = 180):
    """Create or load the study (TPE, median pruner, heartbeats); seed a new one with the defaults."""
    import warnings

    import optuna
    from optuna import storages

    Path(spec.out).mkdir(parents=True, exist_ok=True)
    engine = {"connect_args": {"timeout": 120}} if spec.storage_url.startswith("sqlite") else None
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    # optuna >= 4.9 renamed the callback that retries a stale (killed) trial, and its argument
    if hasattr(storages, "RetryHeartbeatStaleTrialCallback"):
        retry = {"heartbeat_stale_trial_callback": storages.RetryHeartbeatStaleTrialCallback(max_retry=2)}
    else:  # pragma: no cover - older optuna
        retry = {"failed_trial_callback": storages.RetryFailedTrialCallback(max_retry=2)}
    storage = _rdb_storage(
        storages,
        spec.storage_url,
        engine_kwargs=engine,
        heartbeat_interval=max(1, grace_period // 3),
        grace_period=grace_period,
        **retry,
    )
    study = optuna.create_study(
        study_name=spec.study_name, storage=storage, direction="maximize", load_if_exists=True
    )
    # every worker, and every restart of one, its own sampler seed: a seeded sampler replays its draws,
    # so two workers (or a resumed one) would otherwise repeat the same random start-up trials.
    # The study's name is in the seed too: two studies of one family (e.g. on other views) drew the
    # same random settings, so one seeded with the other's best (itself a random draw) ran it twice.
    started = len(study.get_trials(deepcopy=False))
    sampler = optuna.samplers.TPESampler(
        seed=((spec.seed * 1000 + spec.worker) * 100_003 + started + zlib.crc32(spec.study_name.encode()))
        % 2**32,
        n_startup_trials=8,
        multivariate=True,
        constant_liar=True,
    )
    pruner = (
        optuna.pruners.NopPruner()  # equal effort: every trial runs every fold (see RULES)
        if spec.rule == "curve"
        else optuna.pruners.MedianPruner(n_startup_trials=4, n_warmup_steps=0)
    )
    study = optuna.load_study(study_name=spec.study_name, storage=storage, sampler=sampler, pruner=pruner)
    if not study.user_attrs.get("seeded"):
        study.set_user_attr("seeded", True)
        study.set_user_attr("data", spec.data)
        study.set_user_attr("variant", spec.variant)
        study.set_user_attr("folds", spec.folds)
        study.set_user_attr("epochs", spec.epochs)
        study.set_user_attr("views", list(spec.views))
        study.set_user_attr("score_rule", spec.rule)
        for p in default_params(spec.variant) + list(spec.start_from):
            study.enqueue_trial(p, skip_if_exists=True)
    return study


def _fail_orphaned_trials(study, grace_period: int) -> list[int]:
    """Mark FAIL the RUNNING trials that never recorded a heartbeat and started over `grace_period` s ago.

    Optuna fails a killed worker's trial once its heartbeat is stale, but a worker killed between
    creating a trial and its first heartbeat leaves a trial with no heartbeat at all, which Optuna
    never touches: RUNNING for ever (seen once in the killed-study test). Its parameters were not
    drawn yet, so there is nothing to retry. Returns the numbers failed.
    """
    import datetime

    import sqlalchemy
    from optuna.trial import TrialState

    storage = study._storage
    engine = getattr(getattr(storage, "_backend", storage), "engine", None)  # RDB behind Optuna's cache
    running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    if not running or engine is None:
        return []
    try:  # Optuna keeps heartbeats in its own table and has no public reader for them
        with engine.connect() as con:
            beating = {r[0] for r in con.execute(sqlalchemy.text("SELECT trial_id FROM trial_heartbeats"))}
    except sqlalchemy.exc.SQLAlchemyError:
        return []
    now = datetime.datetime.now()  # Optuna stamps datetime_start with the naive local time
    failed = []
    for t in running:
        started = t.datetime_start
        if t._trial_id in beating or started is None or (now - started).total_seconds() < grace_period:
            continue
        try:
            if storage.set_trial_state_values(t._trial_id, TrialState.FAIL):
                failed.append(t.number)
        except RuntimeError:  # another worker finished or failed it meanwhile (UpdateFinishedTrialError)
            continue
    return failed


def _finished(study) -> int:
    from optuna.trial import TrialState

    return len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)))


def optimize(
    spec: TuneSpec,
    dataset: ConversationSet,
    progress: bool = True,
    grace_period: int = 180,
    device: str = "cpu",
) -> None:
    """Run trials until the study holds spec.trials finished (complete or pruned) ones."""
    import optuna

    study = open_study(spec, grace_period)
    if study.user_attrs.get("folds") != spec.folds:
        raise ValueError(
            f"study {spec.study_name} in {spec.storage_url} uses {study.user_attrs.get('folds')} folds, "
            f"not {spec.folds}"
        )
    if study.user_attrs.get("score_rule", "fold_best") != spec.rule:
        raise ValueError(
            f"study {spec.study_name} scores trials by the {study.user_attrs.get('score_rule', 'fold_best')} "
            f"rule, not {spec.rule}"
        )
    if study.user_attrs.get("epochs", SEARCH_EPOCHS) != spec.epochs:
        raise ValueError(
            f"study {spec.study_name} caps its runs at {study.user_attrs.get('epochs', SEARCH_EPOCHS)} "
            f"epochs, not {spec.epochs}"
        )
    if list(study.user_attrs.get("views", [])) != list(spec.views):
        raise ValueError(
            f"study {spec.study_name} in {spec.storage_url} was run on views "
            f"{study.user_attrs.get('views') or 'default'}, not {list(spec.views) or 'default'}"
        )
    folds = grouped_folds(dataset, spec.folds, seed=spec.seed)
    cache = Path(spec.out) / "folds"

    def objective(trial) -> float:
        params = suggest_params(trial, spec.variant, spec.rule)
        scores, epochs, curves = [], [], []
        t0 = time.perf_counter()
        for i in range(len(folds)):
            r = run_fold(
                dataset,
                folds,
                i,
                spec.variant,
                params,
                seed=spec.seed,
                cache_dir=cache,
                device=device,
                epochs=spec.epochs,
                rule=spec.rule,
            )
            scores.append(r["score"])
            epochs.append(r["best_epoch"])
            curves.append([round(v, 6) for v in r["curve"]])
            trial.set_user_attr("fold_scores", scores)
            trial.set_user_attr("best_epochs", epochs)
            trial.set_user_attr("fold_curves", curves)
            trial.set_user_attr("seconds", round(time.perf_counter() - t0, 1))
            if progress:
                print(
                    f"[{spec.study_name} w{spec.worker}] trial {trial.number} fold {i + 1}/{len(folds)}: "
                    f"WF1 {r['score']:.4f} (best epoch {r['best_epoch']}, {r['seconds']:.0f} s)",
                    file=sys.stderr,
                    flush=True,
                )
            trial.report(statistics.fmean(scores), i)
            if i < len(folds) - 1 and trial.should_prune():
                raise optuna.TrialPruned()
        if spec.rule == "curve":
            epoch, score, at_epoch = common_epoch(curves)
            trial.set_user_attr("common_epoch", epoch)
            trial.set_user_attr("fold_scores", at_epoch)  # each fold at the common epoch
            return score
        return statistics.fmean(scores)

    if _finished(study) >= spec.trials:
        return
    _fail_orphaned_trials(study, grace_period)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    from optuna.study import MaxTrialsCallback
    from optuna.trial import TrialState

    study.optimize(
        objective,
        callbacks=[MaxTrialsCallback(spec.trials, states=(TrialState.COMPLETE, TrialState.PRUNED))],
        gc_after_trial=True,
    )


def study_report(spec: TuneSpec, dataset: ConversationSet | None = None) -> dict:
    """Every trial (params, per-fold scores, state) and the best one with its CV mean +- std."""
    import optuna

    study = optuna.load_study(study_name=spec.study_name, storage=spec.storage_url)
    trials = []
    for t in study.get_trials(deepcopy=False):
        trials.append(
            {
                "number": t.number,
                "state": t.state.name,
                "params": t.params,
                "value": t.value,
                "fold_scores": t.user_attrs.get("fold_scores", []),
                "best_epochs": t.user_attrs.get("best_epochs", []),
                "fold_curves": t.user_attrs.get("fold_curves", []),
                "common_epoch": t.user_attrs.get("common_epoch"),
                "seconds": t.user_attrs.get("seconds"),
            }
        )
    states: dict[str, int] = {}
    for t in trials:
        states[t["state"]] = states.get(t["state"], 0) + 1
    # a retried trial repeats a failed one's parameters; count each finished setting once
    distinct = {
        json.dumps(t["params"], sort_keys=True) for t in trials if t["state"] in ("COMPLETE", "PRUNED")
    }
    report = {
        "study": spec.study_name,
        "dataset": spec.data,
        "variant": spec.variant,
        "views": list(spec.views),
        "folds": spec.folds,
        "metric": "mean over folds of the held-out fold's weighted F1 at its best epoch"
        if spec.rule == "fold_best"
        else "fold-mean held-out weighted F1 at the common peak epoch",
        "score_rule": SCORE_RULES[spec.rule],
        "rule": spec.rule,
        "fold_runs": sum(len(t["fold_curves"]) or len(t["fold_scores"]) for t in trials),
        "search_epochs": spec.epochs,
        "patience": PATIENCE,
        "n_trials": len(trials),
        "n_distinct_finished": len(distinct),
        "states": states,
        "trials": trials,
        "best": None,
    }
    if dataset is not None:
        folds = grouped_folds(dataset, spec.folds, seed=spec.seed)
        from .cv import group_of

        ds = dataset.split("train")
        report["fold_groups"] = [sorted({group_of(dataset.name, ds[i]) for i in f})[:8] for f in folds]
        report["fold_sizes"] = [len(f) for f in folds]
    complete = [t for t in trials if t["state"] == "COMPLETE"]
    if complete:
        b = max(complete, key=lambda t: t["value"])
        scores = b["fold_scores"]
        if spec.rule == "curve":
            epochs = b["common_epoch"] or common_epoch(b["fold_curves"])[0]
        else:
            epochs = final_epochs(b["best_epochs"], spec.epochs)
        report["best"] = {
            "number": b["number"],
            "params": b["params"],
            "cv_mean": statistics.fmean(scores),
            "cv_std": statistics.stdev(scores) if len(scores) > 1 else 0.0,
            "fold_scores": scores,
            "best_epochs": b["best_epochs"],
            "final_epochs": epochs,
            "train_args": train_args(b["params"], epochs) + (["--views", *spec.views] if spec.views else []),
        }
    return report


def export_path(spec: TuneSpec, root: Path | str = "results/studies") -> Path:
    return Path(root) / f"{spec.study_name}.json"


def worker_env() -> dict:
    env = dict(os.environ)
    env["AOFL_THREADS"] = "1"
    return env
