"""Checkpoints that load without executing code.

An AO-FL checkpoint is one `.safetensors` file: the weights, plus JSON metadata in the
safetensors header (`__metadata__["aofl"]`): config, label names, modality dims, variant, seed,
data fingerprint, the exact command, metrics, training history, package version. The model is
rebuilt from the config (like nanoGPT's `model_args`), so nothing in the file is ever run.

Foreign `.pt` / `.pth` state dicts (other people's training code) load through
`torch.load(weights_only=True)` after a scan that names any global outside torch's tensor
rebuilders; `module.` / `_orig_mod.` prefixes are stripped and missing/unexpected keys reported.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
import zipfile
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from .data.safe_pickle import scan_globals
from .errors import AOFLError
from .model import AOFL, AOFLConfig

__all__ = ["CheckpointError", "save_checkpoint", "load_checkpoint", "read_metadata", "resolve_checkpoint",
           "load_foreign_state_dict", "load_state_dict_into", "file_sha256", "FORMAT"]

FORMAT = "aofl-checkpoint/1"
CHECKPOINT_FILENAME = "model.safetensors"


class CheckpointError(AOFLError, ValueError):
    """A checkpoint that is missing, corrupt, foreign or unsafe."""


def file_sha256(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def resolve_checkpoint(path) -> Path:
    """A file, or a training output directory holding model.safetensors."""
    p = Path(path).expanduser()
    if p.is_dir():
        p = p / CHECKPOINT_FILENAME
    if not p.exists():
        raise CheckpointError(f"no checkpoint at {p}: check the path (train writes DIR/{CHECKPOINT_FILENAME})")
    return p


def _atomic_write(path: Path, write):
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)  # atomic on POSIX: readers see the old or the new file, never half
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_checkpoint(path, model: AOFL, metadata: dict | None = None, half: bool = False) -> Path:
    """Write weights + metadata atomically. half=True stores float tensors as fp16."""
    path = Path(path)
    if path.suffix != ".safetensors":
        path = path / CHECKPOINT_FILENAME
    tensors = {}
    for k, v in model.state_dict().items():
        v = v.detach().cpu()
        if half and v.is_floating_point():
            v = v.half()
        tensors[k] = v.contiguous()
    meta = dict(metadata or {})
    meta.update(format=FORMAT, config=model.config.to_dict(), dtype="float16" if half else "float32")
    try:
        from . import __version__
        meta.setdefault("package_version", __version__)
    except ImportError:
        pass
    meta.setdefault("torch_version", torch.__version__)
    _atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata={"aofl": json.dumps(meta)}))
    return path


def read_metadata(path) -> dict:
    """The checkpoint's JSON metadata, without loading weights."""
    p = resolve_checkpoint(path)
    if p.suffix != ".safetensors":
        raise CheckpointError(f"{p} is not a .safetensors file; foreign .pt state dicts need load_foreign_state_dict")
    try:
        with safe_open(str(p), framework="pt") as f:
            raw = (f.metadata() or {}).get("aofl")
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{p} is not a readable safetensors file (corrupt or truncated?): {e}") from e
    if raw is None:
        raise CheckpointError(f"{p} is a safetensors file without AO-FL metadata (a foreign checkpoint?); "
                              f"load it with load_state_dict_into(model, path) and a config")
    try:
        meta = json.loads(raw)
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{p}: its AO-FL metadata is not valid JSON: {e}") from e
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{p}: unsupported checkpoint format {meta.get('format')!r} (expected {FORMAT})")
    return meta


def load_checkpoint(path, device="cpu") -> tuple[AOFL, dict]:
    """Rebuild the model from the metadata's config and load its weights (float32, eval mode)."""
    p = resolve_checkpoint(path)
    meta = read_metadata(p)
    try:
        config = AOFLConfig.from_dict(meta["config"])
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{p}: its config cannot build a model: {e}") from e
    model = AOFL(config)
    try:
        with safe_open(str(p), framework="pt") as f:
            state = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError) as e:
        raise CheckpointError(f"{p}: cannot read its tensors (corrupt?): {e}") from e
    report = load_state_dict_into(model, state, strict=True, source=str(p))
    meta["load_report"] = report
    meta["sha256"] = file_sha256(p)
    meta["path"] = str(p)
    return model.to(device).eval(), meta


_STRIP_PREFIXES = ("module.", "_orig_mod.")  # DataParallel/DDP and torch.compile wrappers


def _clean_key(k: str) -> str:
    changed = True
    while changed:
        changed = False
        for pre in _STRIP_PREFIXES:
            if k.startswith(pre):
                k, changed = k[len(pre):], True
    return k


def load_state_dict_into(model: torch.nn.Module, state: dict, strict: bool = False, source: str = "state dict") -> dict:
    """Load tensors by name after stripping wrapper prefixes; report missing/unexpected keys.

    strict=True raises CheckpointError when keys or shapes do not match.
    """
    state = {_clean_key(k): v for k, v in state.items()}
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    mismatched = sorted(k for k in set(own) & set(state) if tuple(own[k].shape) != tuple(state[k].shape))
    if strict and (missing or unexpected or mismatched):
        raise CheckpointError(f"{source} does not match the model its config describes: "
                              f"missing {missing[:8]}, unexpected {unexpected[:8]}, shape mismatch {mismatched[:8]}")
    usable = {k: v.to(own[k].dtype) for k, v in state.items() if k in own and k not in mismatched}
    model.load_state_dict(usable, strict=False)
    return {"missing": missing, "unexpected": unexpected, "mismatched": mismatched, "loaded": len(usable)}


# torch's own rebuild functions: all a plain tensor state dict needs
_TORCH_SAFE_PREFIXES = ("torch._utils._rebuild", "torch.", "collections.OrderedDict", "builtins.set")
_UNSAFE_HINT = ("it was written with torch.save of a whole object; re-save only the state dict "
                "(torch.save(model.state_dict(), path)) or convert it to safetensors")


def load_foreign_state_dict(path) -> dict[str, torch.Tensor]:
    """Tensors of a foreign checkpoint (.safetensors, or .pt/.pth via weights_only loading).

    A file that pickles modules or other code-bearing objects is refused, naming the globals.
    Dicts that wrap the state dict (`{"state_dict": ...}`, `{"model": ...}`) are unwrapped.
    """
    p = Path(path)
    if not p.exists():
        raise CheckpointError(f"no checkpoint at {p}")
    if p.suffix == ".safetensors":
        try:
            with safe_open(str(p), framework="pt") as f:
                return {k: f.get_tensor(k) for k in f.keys()}
        except (SafetensorError, OSError) as e:
            raise CheckpointError(f"{p} is not a readable safetensors file: {e}") from e
    globals_found: list[str] = []
    if zipfile.is_zipfile(p):
        with zipfile.ZipFile(p) as z:
            for name in z.namelist():
                if name.endswith(".pkl"):
                    globals_found += scan_globals(z.read(name))
    else:
        globals_found = scan_globals(p.read_bytes())
    unsafe = sorted({g for g in globals_found if not g.startswith(_TORCH_SAFE_PREFIXES)}
                    | {g for g in globals_found if g.startswith("torch.nn.") or g.startswith("torch.optim")})
    if unsafe:
        raise CheckpointError(f"refused {p}: it references code objects {unsafe}; {_UNSAFE_HINT}")
    try:
        obj = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:  # UnpicklingError for unsafe globals, RuntimeError for corrupt archives
        raise CheckpointError(f"refused or could not read {p}: {e}") from e
    for key in ("state_dict", "model_state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError(f"{p} does not hold a state dict of tensors")
    return obj
