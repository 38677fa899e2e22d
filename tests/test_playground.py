"""The Playground's pipeline in the library (aofl.playground), without Streamlit."""

import pytest

from aofl.playground import PlaygroundSpec, train_and_evaluate

pytestmark = pytest.mark.app  # trains a model (a few seconds)


def test_train_and_evaluate_returns_what_the_page_draws():
    epochs = []
    out = train_and_evaluate(
        PlaygroundSpec(n_dialogues=16, epochs=2, alpha_init_deg=60.0),
        on_epoch=lambda info: epochs.append(info["epoch"]),
    )
    assert epochs == [1, 2] and len(out["history"]) == 2
    assert 0.0 <= out["metrics"]["weighted_f1"] <= 1.0 and len(out["table"]) > 0
    assert out["alpha_start"] == pytest.approx({m: 60.0 for m in out["modalities"]})
    assert set(out["alpha"]) == set(out["modalities"]) and out["embedding"] is not None
    base = train_and_evaluate(PlaygroundSpec(variant="baseline", n_dialogues=16, epochs=1))
    assert not base["has_split"] and base["embedding"] is None
