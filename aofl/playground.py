"""The Playground's pipeline, below the app: generate a small synthetic set, train a tiny AO-FL on it,
score the test split and embed its shared/specific features. The page only reads its sliders into a
`PlaygroundSpec`, calls `train_and_evaluate` (in a child process: `aofl.playground_process`) and draws
the result."""

from __future__ import annotations

import time
from dataclasses import dataclass

from . import embed
from .alpha import alpha_start_deg
from .data import make_synthetic
from .evaluate import evaluate
from .inference import run_inference
from .train import TrainConfig, model_config_for, train

__all__ = ["PlaygroundSpec", "RANGES", "train_and_evaluate"]

DIMS = {"audio": 64, "text": 64, "visual": 64}  # small feature spaces: a run takes seconds
WIDTH = 64


# each setting's range: the page's sliders, and what the CLI accepts (a teaching model, not a search)
RANGES = {
    "n_dialogues": (16, 80),
    "shared_strength": (0.0, 3.0),
    "specific_strength": (0.0, 3.0),
    "noise": (0.1, 3.0),
    "lambda_cen": (0.0, 2.0),
    "lambda_aac": (0.0, 2.0),
    "lambda_csr": (0.0, 2.0),
    "alpha_init_deg": (10.0, 170.0),
    "epochs": (1, 20),
    "seed": (0, 9999),
}


@dataclass(frozen=True)
class PlaygroundSpec:
    variant: str = "full"
    n_dialogues: int = 40
    shared_strength: float = 1.0
    specific_strength: float = 1.0
    noise: float = 1.0
    lambda_cen: float = 1.0
    lambda_aac: float = 1.0
    lambda_csr: float = 1.0
    alpha_init_deg: float = 45.0
    epochs: int = 8
    seed: int = 0

    def __post_init__(self):
        from .model import VARIANTS

        if self.variant not in VARIANTS:
            raise ValueError(f"unknown variant {self.variant!r}; choose from {', '.join(VARIANTS)}")
        for name, (low, high) in RANGES.items():
            if not low <= getattr(self, name) <= high:
                raise ValueError(
                    f"{name} = {getattr(self, name)} is outside the Playground's range [{low}, {high}]"
                )


def train_and_evaluate(spec: PlaygroundSpec, device: str = "cpu", on_epoch=None) -> dict:
    """Train `spec`'s model and return what the page shows: the test table, modalities, α (end, and
    start from the config), the history, the test metrics, a PCA of shared/specific features, seconds.
    `on_epoch(info)` is called after every epoch (train's callback)."""
    start = time.perf_counter()
    data = make_synthetic(
        n_dialogues=int(spec.n_dialogues),
        seed=int(spec.seed),
        dims=DIMS,
        shared_strength=spec.shared_strength,
        specific_strength=spec.specific_strength,
        noise=spec.noise,
    )
    config = model_config_for(
        data,
        spec.variant,
        width=WIDTH,
        lambda_cen=spec.lambda_cen,
        lambda_aac=spec.lambda_aac,
        lambda_csr=spec.lambda_csr,
        alpha_init_deg=spec.alpha_init_deg,
    )
    tc = TrainConfig(
        epochs=int(spec.epochs),
        batch_size=4,
        lr=2e-3,
        patience=int(spec.epochs),
        seed=int(spec.seed),
        device=device,
        progress=False,
        dynamics=False,  # the Playground shows no dynamics panel: the probe's backward passes cost ~40% of training
    )
    trained = train(data, config, tc, callback=on_epoch)
    result = run_inference(trained.model, data, "test")
    metrics = evaluate(trained.model, data, "test", result=result)
    embedding = None
    if result.has_split:
        embedding, _ = embed.embed_spec(
            result, embed.EmbedSpec(method="pca", kinds=("shared", "specific"), seed=int(spec.seed))
        )
    return {
        "table": result.table,
        "modalities": result.modalities,
        "has_split": result.has_split,
        "alpha": result.alpha_deg,
        "alpha_start": alpha_start_deg(config.to_dict(), list(result.alpha_deg)),
        "history": trained.history,
        "best_epoch": trained.best_epoch,
        "metrics": metrics,
        "embedding": embedding,
        "variant": spec.variant,
        "seconds": time.perf_counter() - start,
    }
