"""Tiny synthetic datasets and models shared by the core tests (fast on 2 cores)."""

from aofl.data import make_synthetic
from aofl.model import AOFL
from aofl.train import model_config_for

TINY_DIMS = {"audio": 12, "text": 16, "visual": 10}


def tiny_dataset(seed=0, n_dialogues=20, dims=None):
    return make_synthetic(n_dialogues=n_dialogues, seed=seed, dims=dims or TINY_DIMS, turns=(4, 12))


def tiny_model(dataset, variant="full", seed=0, **kw):
    import torch

    torch.manual_seed(seed)
    kw.setdefault("width", 16)
    return AOFL(model_config_for(dataset, variant, **kw)).eval()
