"""Data-parallel training (DistributedDataParallel) on 2 CPU processes (gloo, loopback) equals one
process over the same global batches; the training set leaves a short last batch with an empty share."""

import math
import os
import socket
import sys
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

sys.path.insert(0, str(Path(__file__).parent))

from aofl import distributed

N_DIALOGUES, BATCH, WORLD, EPOCHS = 24, 2, 2, 2  # 17 train dialogues: global batches of 4, 4, 4, 4, 1
# per-utterance losses only: 2 processes must equal 1 (orthogonal: alpha_logit unused, the
# reconstruction layers used outside forward); `full`'s L_CEN is batch-contrastive, so only close
EXACT = {"baseline": {}, "no_cen": {}, "orthogonal": {"lambda_cen": 0.0}}
VARIANTS = {**EXACT, "full": {}}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _train(batch_size: int, variant: str):
    from _tiny import tiny_dataset

    from aofl.train import TrainConfig, model_config_for, train

    ds = tiny_dataset(n_dialogues=N_DIALOGUES)
    cfg = model_config_for(ds, variant, width=16, dropout=0.0, **VARIANTS[variant])
    tc = TrainConfig(epochs=EPOCHS, batch_size=batch_size, patience=99, progress=False, device="cpu", seed=0)
    return train(ds, cfg, tc)


class _Stop(Exception):
    pass


def _resume_runs(out_dir: str) -> dict:
    """`baseline` with dropout for 3 epochs: once straight through, once stopped at epoch 2 (its state
    holds epoch 1) and resumed. The ranks' dropout masks come from their own generators, which part
    after the first step (local batches of other sizes), so rank 1 must get its own states back."""
    from _tiny import tiny_dataset

    from aofl.train import TrainConfig, model_config_for, train

    ds = tiny_dataset(n_dialogues=N_DIALOGUES)
    cfg = model_config_for(ds, "baseline", width=16, dropout=0.3)
    tc = TrainConfig(epochs=3, batch_size=BATCH, patience=99, progress=False, device="cpu", seed=0)
    whole = train(ds, cfg, tc, state_path=Path(out_dir) / "whole.safetensors")

    def stop(info):
        if info["epoch"] == 2:
            raise _Stop

    cut = Path(out_dir) / "cut.safetensors"
    with pytest.raises(_Stop):
        train(ds, cfg, tc, callback=stop, state_path=cut)
    resumed = train(ds, cfg, tc, state_path=cut, resume=True)
    return {
        "whole": whole.model.state_dict(),
        "resumed": resumed.model.state_dict(),
        "resumed_at": resumed.resumed_at,
    }


def _worker(rank: int, port: int, out_dir: str) -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        WORLD_SIZE=str(WORLD),
        RANK=str(rank),
        LOCAL_RANK=str(rank),
    )
    torch.set_num_threads(1)
    wrappers, forwards = [], []
    real_wrap = distributed.wrap

    def spy(model, device):  # what train() wrapped the model in, and how often its forward ran
        ddp = real_wrap(model, device)
        wrappers.append(type(ddp).__name__)
        ddp.register_forward_pre_hook(lambda *_: forwards.append(1))
        return ddp

    distributed.wrap = spy
    try:
        for variant in VARIANTS:
            forwards.clear()
            res = _train(BATCH, variant)
            torch.save(
                {
                    "state": {k: v.clone() for k, v in res.model.state_dict().items()},
                    "valid_wf1": [r["valid_weighted_f1"] for r in res.history],
                    "best_epoch": res.best_epoch,
                    "wrapper": wrappers[-1],
                    "forwards": len(forwards),
                },
                Path(out_dir) / f"{variant}_rank{rank}.pt",
            )
        torch.save(_resume_runs(out_dir), Path(out_dir) / f"resume_rank{rank}.pt")
    finally:
        distributed.cleanup()


@pytest.fixture(scope="module")
def spawned(tmp_path_factory):
    """Every variant trained once by 2 processes, and a resumed run (one spawn for all: start-up
    dominates); the folder of their results."""
    out = tmp_path_factory.mktemp("ddp")
    port = _free_port()
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_worker, args=(r, port, str(out))) for r in range(WORLD)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0, f"worker failed with exit code {p.exitcode}"
    return out


@pytest.fixture(scope="module")
def two_process_runs(spawned):
    return {
        v: [torch.load(spawned / f"{v}_rank{r}.pt", weights_only=True) for r in range(WORLD)]
        for v in VARIANTS
    }


@pytest.mark.app  # spawns training processes
def test_resumed_run_equals_an_uninterrupted_one(spawned):
    for r in range(WORLD):
        run = torch.load(spawned / f"resume_rank{r}.pt", weights_only=True)
        assert run["resumed_at"] == [1]
        for k, v in run["whole"].items():
            assert torch.equal(run["resumed"][k], v), (r, k)


def test_sharding_is_deterministic_and_complete():
    order = list(range(11))
    batches = distributed.global_batches(order, 2, 2)
    assert batches == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10]]
    shares = [distributed.weighted_share(b, [1] * len(b), r, 2)[0] for b in batches for r in range(2)]
    assert sorted(i for s in shares for i in s) == order
    assert distributed.env_world().world_size >= 1


def test_weighted_share_makes_ddp_mean_a_weighted_sum():
    gb, sizes = [8, 9, 10], [3, 5, 4]
    shares = [distributed.weighted_share(gb, sizes, r, 2) for r in range(2)]
    assert shares == [([8, 10], 7 * 2 / 12), ([9], 5 * 2 / 12)]
    assert sum(scale for _, scale in shares) == pytest.approx(2)  # DDP divides by 2: weights sum to 1
    # an empty share (short last batch) still runs forward/backward for DDP, on a stand-in scaled by 0
    assert distributed.weighted_share([8], [3], 1, 2) == ([8], 0.0)


def test_single_process_is_unchanged(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert not distributed.setup().enabled


@pytest.mark.app  # spawns training processes
def test_runs_through_ddp_with_an_empty_share(two_process_runs):
    from _tiny import tiny_dataset

    n_train = len(tiny_dataset(n_dialogues=N_DIALOGUES).split("train"))
    assert n_train % (BATCH * WORLD) == 1  # the last global batch leaves rank 1 empty
    steps = EPOCHS * math.ceil(n_train / (BATCH * WORLD))
    for runs in two_process_runs.values():
        assert [r["wrapper"] for r in runs] == ["DistributedDataParallel"] * WORLD
        assert [r["forwards"] for r in runs] == [steps] * WORLD  # rank 1 too, on its empty shares


def _without_key_bias(state: dict) -> dict:
    """Attention key biases dropped: softmax ignores them, so their true gradient is 0 and AdamW
    turns float round-off there into lr-sized steps that differ between any two reductions."""
    out = dict(state)
    for k, v in state.items():
        if k.endswith("in_proj_bias"):  # [M, 3w] stacked over modalities (or [3w] in the old layout)
            w = v.shape[-1] // 3
            out[k] = torch.cat([v[..., :w], v[..., 2 * w :]], -1)  # query and value parts
    return out


@pytest.mark.app  # spawns training processes
@pytest.mark.parametrize("variant", VARIANTS)
def test_two_processes_match_one(two_process_runs, variant):
    from aofl.model import AOFL

    r0, r1 = two_process_runs[variant]
    for k in r0["state"]:  # ranks stay in sync
        torch.testing.assert_close(r0["state"][k], r1["state"][k], rtol=0, atol=1e-6)
    torch.set_num_threads(1)
    single = _train(BATCH * WORLD, variant)  # the same global batches in one process
    state, ddp = single.model.state_dict(), r0["state"]
    valid = [r["valid_weighted_f1"] for r in single.history]
    if variant in EXACT:
        a, b = _without_key_bias(ddp), _without_key_bias(state)
        for k in b:
            torch.testing.assert_close(a[k], b[k], rtol=1e-3, atol=1e-4)
        assert r0["best_epoch"] == single.best_epoch
        assert r0["valid_wf1"] == pytest.approx(valid, abs=1e-6)
        if "alpha_logit" in state:  # unused (no L_AAC): no gradient, so AdamW never touches it
            assert torch.equal(ddp["alpha_logit"], state["alpha_logit"])
    else:  # each rank's L_CEN contrasts only its own dialogues: close (0.14 measured), not equal
        torch.manual_seed(0)
        init = AOFL(single.model.config).state_dict()  # train()'s seeded initialisation

        def dist(x, y):
            return sum(((x[k] - y[k]) ** 2).sum() for k in x).sqrt().item()

        assert dist(ddp, state) < 0.3 * dist(state, init)
        assert r0["valid_wf1"] == pytest.approx(valid, abs=0.05)
