"""The app's "Load a checkpoint file" against bad and hostile files (streamlit.testing AppTest).

Each file goes in through the sidebar's path box, as a user would type it: the app must show an
st.error saying what is wrong, raise nothing, run nothing from the file, and keep the shipped
checkpoints working (the Overview still renders one). A good file becomes the selected checkpoint.
"""

import json
import os
import pickle
import shutil
from pathlib import Path

import _tiny
import numpy as np
import pytest
import torch
from streamlit.testing.v1 import AppTest
from test_app import _navigation_like_the_server  # noqa: F401 (the same autouse fixture as test_app.py)

from aofl.store.checkpoint import save_checkpoint

pytestmark = pytest.mark.app  # AppTest drives the app: the full tier only

APP = str(Path(__file__).resolve().parents[1] / "app.py")
TIMEOUT = 240
PATH_KEY = "user_ckpt_path"  # aofl.app.files.PATH_KEY


class _Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _tiny_checkpoint(directory: Path, dataset_name: str) -> Path:
    model = _tiny.tiny_model(_tiny.tiny_dataset())
    return save_checkpoint(directory, model, {"variant": "full", "seed": 0, "data": {"name": dataset_name}})


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """name -> (path, what the error must mention); plus the sentinel a hostile pickle would create."""
    from safetensors.torch import save_file

    d = tmp_path_factory.mktemp("bad-files")
    marker = d / "PWNED"
    hostile = pickle.dumps({"x": _Payload(marker)})
    (d / "hostile.pkl").write_bytes(hostile)
    (d / "disguised.safetensors").write_bytes(hostile)
    (d / "empty.safetensors").write_bytes(b"")
    good = _tiny_checkpoint(d / "other-dims", "synthetic").read_bytes()
    (d / "truncated.safetensors").write_bytes(good[: len(good) // 2])
    (d / "random.pt").write_bytes(b"\x00junk" + np.random.default_rng(0).bytes(4000))
    torch.save(torch.nn.Linear(3, 4), d / "module.pt")
    torch.save(torch.nn.Linear(3, 4).state_dict(), d / "state_dict.pt")
    save_file({"w": torch.zeros(2, 3)}, d / "foreign.safetensors")
    _tiny_checkpoint(d / "other-data", "meld")
    (d / "empty-dir").mkdir()
    cases = {
        "hostile pickle": (d / "hostile.pkl", "posix.system"),
        "pickle named .safetensors": (d / "disguised.safetensors", "holds a pickle"),
        "zero bytes": (d / "empty.safetensors", "empty (0 bytes)"),
        "truncated safetensors": (d / "truncated.safetensors", "truncated"),
        "random bytes .pt": (d / "random.pt", "not a PyTorch checkpoint"),
        "torch.save of a module": (d / "module.pt", "torch.nn.modules.linear.Linear"),
        "foreign state dict": (d / "state_dict.pt", "not an AO-FL checkpoint"),
        "safetensors without AO-FL metadata": (d / "foreign.safetensors", "not an AO-FL checkpoint"),
        "checkpoint of other dims": (d / "other-dims" / "model.safetensors", "dimensions differ"),
        "checkpoint of another dataset": (d / "other-data", "trained on 'meld'"),
        "nonexistent path": (d / "nope.safetensors", "no checkpoint file"),
        "directory without a checkpoint": (d / "empty-dir", "no checkpoint file"),
    }
    return {"cases": cases, "marker": marker}


def new_app() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def load(at: AppTest, path) -> AppTest:
    at.sidebar.text_input(key=PATH_KEY).input(str(path)).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def overview_metrics(at: AppTest) -> dict:
    return {m.label: m.value for m in at.metric}


def test_every_bad_file_is_an_error_and_the_app_stays_usable(app_env, corpus):
    at = new_app()
    shipped = at.sidebar.selectbox(key="checkpoint").value
    baseline = overview_metrics(at)
    assert not at.error and "Weighted F1" in baseline
    for case, (path, reason) in corpus["cases"].items():
        load(at, path)
        errors = [e.value for e in at.error]
        assert len(errors) == 1 and "Cannot use" in errors[0] and reason in errors[0], (case, errors)
        assert "\n" not in errors[0] and "Traceback" not in errors[0], case
        # the shipped checkpoint is still the selected one and its Overview still renders
        assert at.sidebar.selectbox(key="checkpoint").value == shipped, case
        assert overview_metrics(at) == baseline, case
        assert not corpus["marker"].exists(), case
    load(at, "")  # clearing the path clears the error
    assert not at.error and overview_metrics(at) == baseline
    for page in ("angles", "conversations"):  # other pages are unharmed too
        at.switch_page(f"pages/{page}.py").run()
        assert not at.exception and not at.error, page


def test_trusting_shows_a_warning_and_still_never_runs_a_pickle(app_env, corpus):
    at = new_app()
    at.sidebar.checkbox(key="user_ckpt_trust").check().run()
    assert any("trusted" in w.value for w in at.warning)
    path, reason = corpus["cases"]["hostile pickle"]
    load(at, path)
    assert at.error and reason in at.error[0].value
    assert not corpus["marker"].exists()
    assert "Weighted F1" in overview_metrics(at)


def test_a_good_file_becomes_the_selected_checkpoint(app_env, tmp_path):
    entry = app_env["entries"][-1]  # not the one selected by default
    copy = tmp_path / "mine" / "model.safetensors"
    copy.parent.mkdir()
    shutil.copy(entry.path, copy)
    at = new_app()
    at.sidebar.selectbox(key="checkpoint").select(entry.name).run()
    shipped = overview_metrics(at)
    load(at, copy.parent)
    assert not at.error, [e.value for e in at.error]
    assert at.sidebar.selectbox(key="checkpoint").value == "file: mine/model.safetensors"
    assert overview_metrics(at) == shipped and "mine/model.safetensors" in at.caption[0].value
    at.sidebar.selectbox(key="checkpoint").select(app_env["entries"][0].name).run()  # back to a shipped one
    assert not at.error and not at.exception
    at.switch_page("pages/ablations.py").run()  # the file is offered for comparison too
    assert any(
        o.startswith("file: mine/model.safetensors")
        for o in at.sidebar.multiselect(key="checkpoints").options
    )


def test_an_upload_is_saved_by_hash_and_checked_like_a_path(app_env, corpus):
    """The uploader's path (AppTest cannot drive st.file_uploader): saved bytes, then the same checks."""
    from aofl.app.files import _saved_upload, user_checkpoint
    from aofl.errors import AOFLError

    class Upload:
        name = "evil.safetensors"

        def getvalue(self):
            return corpus["cases"]["hostile pickle"][0].read_bytes()

    saved = _saved_upload(Upload())
    assert saved.suffix == ".safetensors" and saved.read_bytes() == Upload().getvalue()
    assert _saved_upload(Upload()) == saved
    with pytest.raises(AOFLError, match="holds a pickle"):
        user_checkpoint(saved, "synthetic", display=Upload.name)
    assert not corpus["marker"].exists()


def test_manifest_json_is_not_a_checkpoint(app_env, tmp_path):
    (tmp_path / "MANIFEST.json").write_text(json.dumps([]))
    at = load(new_app(), tmp_path / "MANIFEST.json")
    assert at.error and "checkpoint manifest" in at.error[0].value


def test_old_uploads_are_forgotten(tmp_path):
    import os
    import time

    from aofl.app.files import UPLOAD_MAX_AGE_S, _forget_old_uploads

    old, fresh = tmp_path / "old.safetensors", tmp_path / "fresh.safetensors"
    old.write_bytes(b"x")
    fresh.write_bytes(b"y")
    week_ago = time.time() - UPLOAD_MAX_AGE_S - 60
    os.utime(old, (week_ago, week_ago))
    _forget_old_uploads(tmp_path)
    assert not old.exists() and fresh.exists()
