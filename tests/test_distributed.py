"""Data-parallel training on 2 CPU processes (gloo, loopback) equals one process over the same
global batches."""
import os
import socket
import sys
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

sys.path.insert(0, str(Path(__file__).parent))

from aofl import distributed  # noqa: E402


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _train(batch_size: int, variant: str):
    from _tiny import tiny_dataset

    from aofl.train import TrainConfig, model_config_for, train
    ds = tiny_dataset(n_dialogues=20)
    cfg = model_config_for(ds, variant, width=16, dropout=0.0)
    tc = TrainConfig(epochs=2, batch_size=batch_size, patience=99, progress=False, device="cpu", seed=0)
    return train(ds, cfg, tc)


def _worker(rank: int, world: int, port: int, out_dir: str, variant: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE=str(world), RANK=str(rank),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    try:
        res = _train(2, variant)
        torch.save({k: v.clone() for k, v in res.model.state_dict().items()}, Path(out_dir) / f"rank{rank}.pt")
    finally:
        distributed.cleanup()


def test_sharding_is_deterministic_and_complete():
    order = list(range(11))
    batches = distributed.global_batches(order, 2, 2)
    assert batches == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10]]
    shares = [distributed.local_share(b, r, 2) for b in batches for r in range(2)]
    assert sorted(i for s in shares for i in s) == order
    assert distributed.local_share([8, 9, 10], 1, 2) == [9]
    assert distributed.env_world().world_size >= 1


def test_single_process_is_unchanged(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert not distributed.setup().enabled


@pytest.mark.parametrize("variant", ["baseline"])
def test_two_processes_match_one(tmp_path, variant):
    port = _free_port()
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_worker, args=(r, 2, port, str(tmp_path), variant)) for r in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0, f"worker failed with exit code {p.exitcode}"
    r0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    r1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    for k in r0:  # ranks stay in sync
        torch.testing.assert_close(r0[k], r1[k], rtol=0, atol=1e-6)
    torch.set_num_threads(1)
    single = _train(4, variant).model.state_dict()  # the same global batches in one process
    for k in r0:
        torch.testing.assert_close(r0[k], single[k], rtol=1e-3, atol=1e-4)
