"""The sidebar's "Load a checkpoint file": the user's own checkpoint, checked like a shipped one.

A typed path (read on the machine that runs the app) or an upload (saved to a temp file) is first
described with `aofl.store.inspect` (safe loaders only: a hostile file is refused, never run), then
loaded and matched against the selected dataset; only then does it become a selectable
`FileEntry`. Any problem is one `st.error` in the sidebar, and the shipped checkpoints stay usable.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
import tempfile
from pathlib import Path

import streamlit as st

from ..compatibility import check_compatible
from ..store.checkpoint import CHECKPOINT_FILENAME, CheckpointError
from ..store.inspect import describe_file
from ..store.registry import CheckpointEntry
from . import caches, context

__all__ = ["FileEntry", "user_checkpoint", "sidebar_loader", "PATH_KEY", "UPLOAD_KEY", "TRUST_KEY"]

PATH_KEY, UPLOAD_KEY, TRUST_KEY = "user_ckpt_path", "user_ckpt_upload", "user_ckpt_trust"
_SELECTED = "_user_ckpt_selected"  # the file that was last made the selected checkpoint


@dataclasses.dataclass(frozen=True)
class FileEntry(CheckpointEntry):
    """A checkpoint the user loaded. allow_unsafe: their "Trust files I load" choice (None: default policy)."""

    allow_unsafe: bool | None = None


@st.cache_data(show_spinner=False, max_entries=32)
def _describe(path: str, mtime_ns: int, size: int) -> dict:
    return describe_file(path)


def _display_name(p: Path) -> str:
    return f"{p.parent.name}/{p.name}" if p.name == CHECKPOINT_FILENAME and p.parent.name else p.name


def user_checkpoint(
    path, dataset: str, device: str = "cpu", allow_unsafe: bool | None = None, display: str | None = None
) -> tuple[FileEntry, dict]:
    """(entry, description) of the checkpoint file at `path`, usable with `dataset`.

    Raises an AOFLError whose message says what the file is and what is wrong with it."""
    p = Path(str(path).strip()).expanduser()
    if p.is_dir():
        p = p / CHECKPOINT_FILENAME
    if not p.is_file():
        raise CheckpointError(
            f"no checkpoint file at {p} (the path is read on the machine that runs the app)"
        )
    stat = p.stat()
    # described with the safe loaders even when trusted: the app only runs AO-FL checkpoints, and
    # for a file that is something else the description is the most useful message
    info = _describe(str(p), stat.st_mtime_ns, stat.st_size)
    if info["kind"] != "aofl-checkpoint":
        raise CheckpointError(
            f"{p.name} is a {info['what']}, not an AO-FL checkpoint: the app loads the "
            f".safetensors files that `python -m aofl train` writes"
        )
    entry = FileEntry(
        name=f"file: {display or _display_name(p)}",
        dataset=dataset,
        variant="?",
        seed=0,
        path=p.resolve(),
        allow_unsafe=allow_unsafe,
    )
    _, meta = caches.get_model(entry, device)
    # other dataset, labels or feature dims: refused here, before any page runs it (a different data
    # version is only a warning, which the pages show)
    check_compatible(
        meta,
        caches.get_dataset(dataset),
        source=_display_name(p),
        fingerprint=caches.dataset_fingerprint(dataset),
    )
    test = (meta.get("metrics") or {}).get("test") or {}
    return dataclasses.replace(
        entry,
        variant=str(meta.get("variant", "?")),
        seed=int(meta.get("seed") or 0),
        metrics={k: test[k] for k in ("weighted_f1", "accuracy") if k in test},
        command=str(meta.get("command") or ""),
    ), info


def _saved_upload(upload) -> Path:
    """The uploaded bytes as a file named by their hash (so reruns reuse it), in the temp directory."""
    from ..io.atomic import atomic_write_bytes

    data = upload.getvalue()
    suffix = re.sub(r"[^a-z0-9.]", "", Path(upload.name).suffix.lower())[:16]
    out = Path(tempfile.gettempdir()) / "aofl-uploads" / f"{hashlib.sha256(data).hexdigest()[:32]}{suffix}"
    if out.is_file():
        out.touch()  # in use again: not old
    else:
        out.parent.mkdir(parents=True, exist_ok=True)
        _forget_old_uploads(out.parent)
        atomic_write_bytes(out, data)
    return out


UPLOAD_MAX_AGE_S = 7 * 24 * 3600  # a week: long enough for any session that still shows the file


def _forget_old_uploads(directory: Path, now: float | None = None) -> None:
    """Delete uploads nobody touched for UPLOAD_MAX_AGE_S, so the temp directory does not grow forever."""
    import time

    now = time.time() if now is None else now
    for f in directory.iterdir():
        try:
            if f.is_file() and now - f.stat().st_mtime > UPLOAD_MAX_AGE_S:
                f.unlink()
        except OSError:  # another server process removed it first, or it is not ours to remove
            pass


def sidebar_loader(dataset: str, device: str) -> FileEntry | None:
    """Draw the loader (in the sidebar); the user's checkpoint when it is valid for `dataset`, else
    None (with an st.error saying why). A newly loaded file becomes the selected checkpoint."""
    with st.expander("Load a checkpoint file", expanded=bool(st.session_state.get(PATH_KEY))):
        st.text_input(
            "Path on this machine",
            key=PATH_KEY,
            placeholder="runs/full/model.safetensors",
            help="A checkpoint written by `python -m aofl train` (the file or its directory)",
        )
        upload = st.file_uploader("or upload one", key=UPLOAD_KEY)
        trust = st.checkbox(
            "Trust files I load (unsafe)",
            key=TRUST_KEY,
            help="Passes allow_unsafe=True to the loaders for your file: they may then accept "
            "what they refuse by default, and a hostile file could run code here",
        )
        if trust:
            st.warning(
                "Files you load are trusted: the loaders may accept what they would refuse, and a "
                "hostile file could run code on this machine. Only for files from people you trust."
            )
    path = (st.session_state.get(PATH_KEY) or "").strip()
    if upload is None and not path:
        return None
    shown = upload.name if upload is not None else _display_name(Path(path))  # the reason names the full path
    try:
        source = _saved_upload(upload) if upload is not None else path
        # the checkbox alone decides for the user's file (False, not None: no process-wide env var)
        entry, _ = user_checkpoint(
            source,
            dataset,
            device,
            allow_unsafe=bool(trust),
            display=upload.name if upload is not None else None,
        )
    except Exception as e:
        reason = str(e) if isinstance(e, context.USER_ERRORS) else f"{type(e).__name__}: {e}"
        st.error(f"Cannot use {shown}: {reason}")
        return None
    st.caption(f"Loaded **{entry.name}** ({entry.variant}, seed {entry.seed})")
    if st.session_state.get(_SELECTED) != str(entry.path):  # a new file: select it, once
        st.session_state[_SELECTED] = str(entry.path)
        context.select("checkpoint", entry.name)
    return entry
