"""Checkpoints that load without executing code.

An AO-FL checkpoint is one `.safetensors` file: the weights, plus JSON metadata in the
safetensors header (`__metadata__["aofl"]`): config, label names, modality dims, variant, seed,
data fingerprint, the exact command, metrics, training history, package version. The model is
rebuilt from the config (like nanoGPT's `model_args`), so nothing in the file is ever run. Before
loading, the header is checked against the file size (`file_checks.safetensors_header`) and the
config's model is built on the meta device and compared with the stored shapes. Checkpoints of the
former per-modality layout of the heads and OPR load through `aofl.model.convert_state_dict`;
new ones are written in the stacked layout.

Foreign `.pt` / `.pth` state dicts (other people's training code) load through
`torch.load(weights_only=True)` after zip size checks and a scan that names any global outside
torch's allow-list (`get_unsafe_globals_in_checkpoint`); such a file is refused unless unsafe loading
is opted in (`aofl.io.safe_pickle.unsafe_load_allowed`). `module.` / `_orig_mod.` prefixes are
stripped and missing/unexpected keys reported.
"""

from __future__ import annotations

import json
import pickle
import zipfile
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save
from torch.overrides import TorchFunctionMode

from .. import __version__
from ..errors import CheckpointError, CorruptFileError
from ..io.atomic import atomic_write_bytes
from ..io.file_checks import check_zip_sizes, require_nonempty, safetensors_header
from ..io.hashing import file_sha256
from ..io.safe_pickle import (
    ALLOW_UNSAFE_ENV,
    CorruptPickleError,
    pickle_globals,
    unsafe_load_allowed,
    warn_unsafe_load,
)
from ..model import AOFL, AOFLConfig, convert_shapes, convert_state_dict

__all__ = [
    "CheckpointError",
    "CorruptCheckpointError",
    "UnsafeCheckpointError",
    "save_checkpoint",
    "load_checkpoint",
    "read_metadata",
    "resolve_checkpoint",
    "load_foreign_state_dict",
    "load_state_dict_into",
    "FORMAT",
]

FORMAT = "aofl-checkpoint/1"
CHECKPOINT_FILENAME = "model.safetensors"


class CorruptCheckpointError(CheckpointError, CorruptFileError):
    """A checkpoint file that is empty, truncated or malformed."""


class UnsafeCheckpointError(CheckpointError):
    """A checkpoint that pickles code (modules, arbitrary globals), refused without the opt-in."""


def resolve_checkpoint(path) -> Path:
    """A file, or a training output directory holding model.safetensors."""
    p = Path(path).expanduser()
    if p.is_dir():
        p = p / CHECKPOINT_FILENAME
    if not p.exists():
        raise CheckpointError(
            f"no checkpoint at {p}: check the path (train writes DIR/{CHECKPOINT_FILENAME})"
        )
    return p


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
    meta.setdefault("package_version", __version__)
    meta.setdefault("torch_version", torch.__version__)
    # serialised in memory, then temp file + fsync + rename (aofl/atomic.py): readers, and a run after
    # a crash, see the old or the new file, never half (save_file would leave its own .tmpXXXXXX)
    atomic_write_bytes(path, save(tensors, metadata={"aofl": json.dumps(meta)}))
    return path


def read_metadata(path, allow_unsafe: bool | None = None) -> dict:
    """The checkpoint's JSON metadata, without loading weights.

    allow_unsafe is accepted for a uniform loader signature and has no effect: nothing in a
    safetensors file is ever executed.
    """
    return _read_header_and_metadata(resolve_checkpoint(path))[1]


def _read_header_and_metadata(p: Path) -> tuple[dict, dict]:
    if p.suffix != ".safetensors":
        raise CheckpointError(
            f"{p} is not a .safetensors file; foreign .pt state dicts need load_foreign_state_dict"
        )
    header = safetensors_header(p, CorruptCheckpointError)
    raw = (header.get("__metadata__") or {}).get("aofl")
    if raw is None:
        raise CheckpointError(
            f"{p} is a safetensors file without AO-FL metadata (a foreign checkpoint?); "
            f"load it with load_state_dict_into(model, path) and a config"
        )
    try:
        meta = json.loads(raw)
    except (ValueError, RecursionError) as e:
        raise CorruptCheckpointError(f"{p}: its AO-FL metadata is not valid JSON: {e}") from None
    if not isinstance(meta, dict):
        raise CorruptCheckpointError(
            f"{p}: its AO-FL metadata is a {type(meta).__name__}, expected an object"
        )
    if meta.get("format") != FORMAT:
        raise CheckpointError(
            f"{p}: unsupported checkpoint format {meta.get('format')!r} (expected {FORMAT})"
        )
    return header, meta


class _ShapesOnly(TorchFunctionMode):
    """Skips weight initialisers on meta tensors: their values are never read, and meta normal_
    alone imports torch._dynamo (about 2 s). Function modes are thread-local."""

    _INIT = {
        "normal_",
        "uniform_",
        "trunc_normal_",
        "kaiming_uniform_",
        "kaiming_normal_",
        "xavier_uniform_",
        "xavier_normal_",
        "orthogonal_",
        "zeros_",
        "ones_",
        "constant_",
        "zero_",
        "fill_",
    }

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        t = args[0] if args else kwargs.get("tensor")
        if getattr(func, "__name__", "") in self._INIT and isinstance(t, torch.Tensor) and t.is_meta:
            return t
        return func(*args, **kwargs)


def _build_model(p: Path, meta: dict, header: dict) -> AOFL:
    """The model the config describes, after checking on the meta device (no memory) that its
    parameter shapes are the file's: a hostile config (width 10**9) never allocates anything."""
    try:
        config = AOFLConfig.from_dict(meta["config"])
        with torch.device("meta"), _ShapesOnly():
            shapes = {k: list(v.shape) for k, v in AOFL(config).state_dict().items()}
    except (KeyError, TypeError, ValueError, RuntimeError, AttributeError, OverflowError) as e:
        raise CheckpointError(f"{p}: its config cannot build a model: {type(e).__name__}: {e}") from None
    try:  # the shapes after `convert_state_dict` (shapes only: nothing allocated)
        stored = {k: tuple(int(n) for n in v["shape"]) for k, v in header.items() if k != "__metadata__"}
        stored = {k: list(v) for k, v in convert_shapes(stored, config).items()}
    except (KeyError, TypeError, ValueError, RuntimeError, OverflowError) as e:
        raise CheckpointError(f"{p}: its tensors cannot be AO-FL weights: {type(e).__name__}: {e}") from None
    if stored != shapes:
        missing, unexpected = sorted(set(shapes) - set(stored)), sorted(set(stored) - set(shapes))
        wrong = sorted(k for k in set(shapes) & set(stored) if shapes[k] != stored[k])
        raise CheckpointError(
            f"{p}: its tensors do not match the model its config describes: missing "
            f"{missing[:8]}, unexpected {unexpected[:8]}, shape mismatch {wrong[:8]}"
        )
    return AOFL(config)


def _read_tensors(p: Path) -> dict[str, torch.Tensor]:
    try:
        with safe_open(str(p), framework="pt") as f:
            return {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError, RuntimeError, TypeError) as e:
        raise CorruptCheckpointError(f"{p}: cannot read its tensors (corrupt?): {e}") from None


def load_checkpoint(path, device="cpu", allow_unsafe: bool | None = None) -> tuple[AOFL, dict]:
    """Rebuild the model from the metadata's config and load its weights (float32, eval mode).

    The file is checked first (sizes, header, config against tensor shapes). allow_unsafe has no
    effect (a safetensors file holds no code); it is accepted like every loader's.
    """
    p = resolve_checkpoint(path)
    header, meta = _read_header_and_metadata(p)
    model = _build_model(p, meta, header)
    report = load_state_dict_into(model, _read_tensors(p), strict=True, source=str(p))
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
                k, changed = k[len(pre) :], True
    return k


def load_state_dict_into(
    model: torch.nn.Module, state: dict, strict: bool = False, source: str = "state dict"
) -> dict:
    """Load tensors by name after stripping wrapper prefixes (and, into an AOFL, converting the former
    per-modality layout: `convert_state_dict`); report missing/unexpected keys.

    strict=True raises CheckpointError when keys or shapes do not match.
    """
    state = {_clean_key(k): v for k, v in state.items()}
    if isinstance(model, AOFL):
        try:
            state = convert_state_dict(state, model.config)
        except RuntimeError as e:  # per-modality tensors of unequal shapes
            raise CheckpointError(f"{source}: cannot convert its per-modality weights: {e}") from None
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    mismatched = sorted(k for k in set(own) & set(state) if tuple(own[k].shape) != tuple(state[k].shape))
    if strict and (missing or unexpected or mismatched):
        raise CheckpointError(
            f"{source} does not match the model its config describes: "
            f"missing {missing[:8]}, unexpected {unexpected[:8]}, shape mismatch {mismatched[:8]}"
        )
    usable = {k: v.to(own[k].dtype) for k, v in state.items() if k in own and k not in mismatched}
    model.load_state_dict(usable, strict=False)
    return {"missing": missing, "unexpected": unexpected, "mismatched": mismatched, "loaded": len(usable)}


# torch's own rebuild functions: all a plain tensor state dict needs (used when torch's own
# scanner cannot read a pickle, e.g. opcodes torch.save never writes)
_TORCH_SAFE_PREFIXES = (
    "torch._utils._rebuild",
    "torch.",
    "collections.OrderedDict",
    "builtins.set",
    "__builtin__.set",
)
_UNSAFE_HINT = (
    "it was written with torch.save of a whole object; re-save only the state dict "
    "(torch.save(model.state_dict(), path)) or convert it to safetensors. If you trust the file, "
    f"set {ALLOW_UNSAFE_ENV}=1 or pass --allow-unsafe-load"
)


def _heuristic_unsafe(names) -> list[str]:
    return sorted(
        {
            g
            for g in names
            if not g.startswith(_TORCH_SAFE_PREFIXES) or g.startswith(("torch.nn.", "torch.optim"))
        }
    )


def _zip_unsafe_globals(p: Path) -> list[str]:
    """Globals of a torch.save archive that weights_only loading would refuse, named before loading.

    Sizes are checked first; the pickle is checked by our scanner (truncation, size bombs), then
    torch's own `get_unsafe_globals_in_checkpoint` names what its allow-list refuses.
    """
    infos = check_zip_sizes(p, CorruptCheckpointError)
    pkls = sorted((i for i in infos if i.filename.endswith("data.pkl")), key=lambda i: len(i.filename))
    if not pkls:
        raise CheckpointError(f"{p} is a zip archive without data.pkl: not a torch.save checkpoint")
    with zipfile.ZipFile(p) as z:
        try:
            data = z.read(pkls[0])
        except (zipfile.BadZipFile, OSError, ValueError, EOFError) as e:
            raise CorruptCheckpointError(f"{p}: cannot read {pkls[0].filename} (corrupt?): {e}") from None
    try:
        ours = pickle_globals(data, f"{p}:{pkls[0].filename}")
    except CorruptPickleError as e:
        raise CorruptCheckpointError(str(e)) from None
    try:
        return sorted(torch.serialization.get_unsafe_globals_in_checkpoint(str(p)))
    except Exception:
        return _heuristic_unsafe(ours)


def load_foreign_state_dict(path, allow_unsafe: bool | None = None) -> dict[str, torch.Tensor]:
    """Tensors of a foreign checkpoint (.safetensors, or .pt/.pth via weights_only loading).

    A file that pickles modules or other code-bearing objects is refused (UnsafeCheckpointError),
    naming the globals, unless unsafe loading is opted in (`allow_unsafe=True` or
    $AOFL_ALLOW_UNSAFE_LOAD=1; see `aofl.io.safe_pickle.unsafe_load_allowed`), which warns.
    Dicts that wrap the state dict (`{"state_dict": ...}`, `{"model": ...}`) are unwrapped; an
    opted-in pickled nn.Module gives its state_dict().
    """
    p = Path(path)
    require_nonempty(p, CorruptCheckpointError, "checkpoint")
    if p.suffix == ".safetensors":
        safetensors_header(p, CorruptCheckpointError)
        return _read_tensors(p)
    if zipfile.is_zipfile(p):
        unsafe = _zip_unsafe_globals(p)
    else:  # legacy torch format or a bare pickle: name what the first pickle stream references
        head = p.read_bytes()
        if head.startswith(b"PK"):
            raise CorruptCheckpointError(
                f"{p} starts like a zip archive (torch.save) but is truncated or corrupt"
            )
        try:  # magic number, protocol, sys info, object, storage keys: five pickles, then raw bytes
            unsafe = _heuristic_unsafe(pickle_globals(head, str(p), max_streams=5))
        except CorruptPickleError as e:
            raise CorruptCheckpointError(
                f"{p} is neither a torch.save archive nor a complete pickle: {e}"
            ) from None
    if unsafe and not unsafe_load_allowed(allow_unsafe):
        raise UnsafeCheckpointError(f"refused {p}: it references code objects {unsafe}; {_UNSAFE_HINT}")
    if unsafe:
        warn_unsafe_load(p, unsafe)
    try:
        obj = torch.load(p, map_location="cpu", weights_only=not unsafe)
    except pickle.UnpicklingError as e:  # weights_only refused a global the scans missed
        raise UnsafeCheckpointError(f"refused {p}: {str(e).splitlines()[0]}; {_UNSAFE_HINT}") from None
    except Exception as e:
        raise CorruptCheckpointError(
            f"could not read {p} (truncated or corrupt?): {type(e).__name__}: "
            f"{str(e).splitlines()[0] if str(e) else ''}"
        ) from None
    if unsafe and isinstance(obj, torch.nn.Module):
        obj = obj.state_dict()
    for key in ("state_dict", "model_state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError(f"{p} does not hold a state dict of tensors (found {type(obj).__name__})")
    return obj
