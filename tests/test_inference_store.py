"""aofl.store.inference_store: an InferenceResult written and read back whole, no Streamlit."""

import numpy as np
import pandas as pd
import pytest
from _tiny import tiny_dataset, tiny_model

from aofl.inference import run_inference
from aofl.store import inference_store


@pytest.fixture(scope="module")
def result():
    ds = tiny_dataset(n_dialogues=8)
    return run_inference(tiny_model(ds, "full"), ds, "test")


def test_round_trip(result, tmp_path):
    directory = tmp_path / inference_store.key("sha", "fp", "test", ())
    assert inference_store.save(directory, result)
    back = inference_store.load(directory)
    pd.testing.assert_frame_equal(back.table, result.table)
    np.testing.assert_array_equal(back.probabilities, result.probabilities)
    for group in inference_store.ARRAY_GROUPS:
        got, want = getattr(back, group), getattr(result, group)
        assert got.keys() == want.keys()
        for m in want:
            np.testing.assert_array_equal(got[m], want[m])
    assert (back.alpha_deg, back.label_names, back.modalities) == (
        result.alpha_deg,
        result.label_names,
        result.modalities,
    )
    frozen = inference_store.read_only(back)
    assert not frozen.probabilities.flags.writeable and not next(iter(frozen.shared.values())).flags.writeable


def test_missing_or_corrupt_entries_read_as_none(result, tmp_path):
    assert inference_store.load(tmp_path / "absent") is None
    directory = tmp_path / "entry"
    inference_store.save(directory, result)
    (directory / "arrays.npz").write_bytes(b"not a zip")
    assert inference_store.load(directory) is None
    assert inference_store.save(directory, result)  # a corrupt entry is replaced
    assert inference_store.load(directory) is not None


def test_key_names_every_input():
    base = inference_store.key("sha", "fp", "test", ())
    assert base == inference_store.key("sha", "fp", "test", ())
    assert (
        len(
            {
                base,
                inference_store.key("sha2", "fp", "test", ()),
                inference_store.key("sha", "fp2", "test", ()),
                inference_store.key("sha", "fp", "valid", ()),
                inference_store.key("sha", "fp", "test", (("audio", "zero"),)),
            }
        )
        == 5
    )
