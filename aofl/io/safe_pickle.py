"""The loading policy for files we did not write: research pickles are data, never code.

`pickle.load` executes any global a file names (`os.system` included). `safe_load` refuses every
global outside an explicit allow-list and names the ones a file asked for. Before anything is
unpickled the opcode stream is checked (pickletools, which runs nothing): a truncated or corrupt
file, a length that runs past the end of the file or a memo index far beyond the file's size
fails fast as `CorruptPickleError` instead of allocating gigabytes.

Unrestricted loading is possible only on an explicit opt-in (`unsafe_load_allowed`): the keyword
`allow_unsafe=True`, or `AOFL_ALLOW_UNSAFE_LOAD=1` (what `--allow-unsafe-load` sets). It always
warns, naming the file. The torch path (`aofl.store.checkpoint.load_foreign_state_dict`) uses the same
switch.
"""

from __future__ import annotations

import io
import os
import pickle
import pickletools
import warnings
from pathlib import Path

import numpy as np

from ..errors import AOFLError, CorruptFileError

__all__ = [
    "UnsafePickleError",
    "CorruptPickleError",
    "UnsafeLoadWarning",
    "safe_load",
    "safe_loads",
    "NUMPY_GLOBALS",
    "BUILTIN_GLOBALS",
    "scan_globals",
    "pickle_globals",
    "unsafe_load_allowed",
    "warn_unsafe_load",
    "ALLOW_UNSAFE_ENV",
]

ALLOW_UNSAFE_ENV = "AOFL_ALLOW_UNSAFE_LOAD"

# What numpy arrays need to be rebuilt, and nothing more (MultiEMO / DialogueRNN pickles).
# numpy 2 writes numpy._core, numpy 1 numpy.core; _frombuffer is protocol 5 (Python 3.14's default).
NUMPY_GLOBALS = frozenset(
    {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy.core.numeric", "_frombuffer"),
        ("numpy._core.numeric", "_frombuffer"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),  # protocol-2 pickles store array bytes as latin-1 text
    }
)

# Containers that pickles of protocol < 4 build by calling their class (`__builtin__` is Python 2's
# and Python 3's protocol-2 spelling). Not `range`, `bytearray`, `slice`: no data file needs them,
# and `set(range(10**12))` or `bytearray(10**12)` would be a memory bomb in a few bytes.
BUILTIN_GLOBALS = frozenset(
    {(mod, name) for mod in ("builtins", "__builtin__") for name in ("set", "frozenset", "complex")}
    | {("collections", "OrderedDict")}
)


class UnsafePickleError(AOFLError, pickle.UnpicklingError):
    """Raised when a pickle names a global outside the allow-list."""


class CorruptPickleError(CorruptFileError, pickle.UnpicklingError):
    """A file that is not a complete, well-formed pickle (empty, truncated, garbage, absurd sizes)."""


class UnsafeLoadWarning(UserWarning):
    """A file is being loaded with code execution allowed, because the user opted in."""


def unsafe_load_allowed(allow_unsafe: bool | None = None) -> bool:
    """The one opt-in switch: an explicit keyword wins; None reads $AOFL_ALLOW_UNSAFE_LOAD."""
    if allow_unsafe is not None:
        return bool(allow_unsafe)
    return os.environ.get(ALLOW_UNSAFE_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def warn_unsafe_load(source, refused) -> None:
    warnings.warn(
        f"loading {source} WITHOUT restrictions ({', '.join(refused) or 'code objects'}): it can run "
        f"any code; allowed because unsafe loading was opted in (allow_unsafe / {ALLOW_UNSAFE_ENV} / "
        f"--allow-unsafe-load). Do this only for files you trust.",
        UnsafeLoadWarning,
        stacklevel=3,
    )


# ---------------------------------------------------------------------------- numpy, without the sharp edges


class _NdarrayType:
    """Stands for numpy.ndarray inside a pickle: `_reconstruct` may use it, nobody may call it."""


def _reconstruct(subtype, shape, dtype):
    # numpy always writes _reconstruct(ndarray, (0,), b'b') and then sets the real shape and bytes
    # (__setstate__ checks they agree); any other shape would allocate what the file declares.
    if subtype is not _NdarrayType or tuple(shape) != (0,):
        raise UnsafePickleError(f"refused numpy _reconstruct({subtype!r}, {shape!r}): not what numpy writes")
    return np.ndarray.__new__(np.ndarray, (0,), dtype)


def _encode(text, encoding="utf-8", errors="strict"):
    # protocol-2 array bytes are latin-1 text; other codecs (zlib, bz2, ...) have no business here
    if str(encoding).lower().replace("-", "").replace("_", "") not in ("latin1", "iso88591"):
        raise UnsafePickleError(f"refused _codecs.encode with codec {encoding!r}")
    return str(text).encode(encoding, errors)


_NUMPY_STAND_INS = {
    ("numpy", "ndarray"): _NdarrayType,
    ("_codecs", "encode"): _encode,
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
}


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file, allowed, **kw):
        super().__init__(file, **kw)
        self._allowed = allowed

    def find_class(self, module, name):
        if (module, name) not in self._allowed:
            raise UnsafePickleError(
                f"refused to load global '{module}.{name}': this file asks to run or build code "
                f"that is not on the allow-list (only plain data and numpy arrays are accepted)"
            )
        return _NUMPY_STAND_INS.get((module, name)) or super().find_class(module, name)


# ---------------------------------------------------------------------------- static checks (nothing runs)

_STRING_OPS = {
    "SHORT_BINUNICODE",
    "BINUNICODE",
    "UNICODE",
    "BINUNICODE8",
    "STRING",
    "BINSTRING",
    "SHORT_BINSTRING",
}
_PUT_OPS = {"PUT", "BINPUT", "LONG_BINPUT"}
_GET_OPS = {"GET", "BINGET", "LONG_BINGET"}


def _walk(data: bytes, found: set, start: int = 0) -> int:
    """Add every global the stream at `start` references to `found`, as (module, name), running
    nothing; return the position after its STOP.

    Raises ValueError for a stream that is truncated, corrupt, or declares sizes beyond the data
    (pickletools checks each declared length against what is left). A model of the recently pushed
    strings follows the memo, so STACK_GLOBAL names are right when a pickle reuses `numpy` via GET.
    """
    size = len(data)
    stream = io.BytesIO(data)  # shares the bytes; genops positions are absolute
    stream.seek(start)
    recent: list = []  # what the last opcodes pushed: the string, or None for anything else
    memo: dict[int, object] = {}
    for op, arg, pos in pickletools.genops(stream):
        name = op.name
        if name == "STOP":
            return pos + 1
        if name in _PUT_OPS or name == "MEMOIZE":
            idx = len(memo) if name == "MEMOIZE" else int(arg)
            if idx > size:  # each memo entry costs a byte at least: a bigger index is a memory bomb
                raise ValueError(f"memo index {idx} at byte {pos} is larger than the file ({size} bytes)")
            memo[idx] = recent[-1] if recent else None
        elif name in _GET_OPS:
            recent.append(memo.get(int(arg)))
        elif name in _STRING_OPS:
            recent.append(arg if isinstance(arg, str) else None)
        elif name == "GLOBAL":
            found.add(tuple(arg.split(" ", 1)))
            recent.append(None)
        elif name == "STACK_GLOBAL":
            pair = tuple(recent[-2:])
            found.add(pair if len(pair) == 2 and all(isinstance(x, str) for x in pair) else ("?", "?"))
            recent.append(None)
        elif name == "FRAME" and arg > size - pos:
            raise ValueError(f"a frame at byte {pos} declares {arg} bytes, the file has {size - pos} left")
        elif op.stack_after:
            recent.append(None)
        if len(recent) > 64:
            del recent[:32]
    raise ValueError("no STOP opcode")  # genops raises first; kept for the type checker


def scan_globals(data: bytes) -> list[str]:
    """Names of all globals a pickle stream references, found without unpickling it (best effort:
    a truncated stream reports what was found before the damage)."""
    found: set = set()
    try:
        _walk(data, found)
    except Exception:
        pass
    return sorted(".".join(g) for g in found)


def _checked_globals(data: bytes, source: str, start: int = 0) -> tuple[set, int]:
    if not data:
        raise CorruptPickleError(f"{source} is empty (0 bytes): re-download or re-create it")
    found: set = set()
    try:
        end = _walk(data, found, start)
    except Exception as e:
        raise CorruptPickleError(f"{source} is not a complete pickle (truncated or corrupt?): {e}") from None
    return found, end


def pickle_globals(data: bytes, source: str = "<pickle data>", max_streams: int = 1) -> list[str]:
    """Globals referenced by the pickle stream(s) at the start of `data` (up to `max_streams`
    consecutive ones, as in torch's legacy format); CorruptPickleError for a damaged stream."""
    found, pos = _checked_globals(data, source, 0)
    for _ in range(max_streams - 1):
        if pos >= len(data) or data[pos] != pickle.PROTO[0]:
            break
        more, pos = _checked_globals(data, source, pos)
        found |= more
    return sorted(".".join(g) for g in found)


def _allowed(allow_numpy: bool) -> frozenset:
    return BUILTIN_GLOBALS | NUMPY_GLOBALS if allow_numpy else BUILTIN_GLOBALS


def _read(path_or_file) -> tuple[bytes, str]:
    if isinstance(path_or_file, (str, Path)):
        p = Path(path_or_file)
        try:
            return p.read_bytes(), str(p)
        except IsADirectoryError:
            raise CorruptPickleError(f"{p} is a directory, not a pickle file") from None
    data = path_or_file.read()
    return bytes(data), str(getattr(path_or_file, "name", "<pickle data>"))


def safe_load(
    path_or_file, allow_numpy: bool = False, encoding: str = "ASCII", allow_unsafe: bool | None = None
):
    """Unpickle plain data (dict, list, str, numbers; numpy arrays if allow_numpy).

    Raises UnsafePickleError naming the refused globals, CorruptPickleError for a damaged file,
    FileNotFoundError for a missing one. allow_unsafe: see `unsafe_load_allowed` (warns when used).
    """
    data, source = _read(path_or_file)
    allowed = _allowed(allow_numpy)
    refused = sorted(".".join(g) for g in _checked_globals(data, source)[0] - allowed)
    if refused and not unsafe_load_allowed(allow_unsafe):
        raise UnsafePickleError(
            f"refused to load {source}: it names globals outside the allow-list {refused} (accepted: plain data"
            f"{' and numpy arrays' if allow_numpy else ''}). If you trust this file, set "
            f"{ALLOW_UNSAFE_ENV}=1 or pass --allow-unsafe-load"
        )
    if refused:  # opted in, else refused above
        return _load_unrestricted(data, source, refused, encoding)
    try:
        return _RestrictedUnpickler(io.BytesIO(data), allowed, encoding=encoding).load()
    except UnsafePickleError as e:  # a global the static scan could not name (built at runtime)
        if not unsafe_load_allowed(allow_unsafe):
            raise UnsafePickleError(f"{source}: {e}") from None
        return _load_unrestricted(data, source, [], encoding)
    except Exception as e:
        raise CorruptPickleError(f"cannot unpickle {source} (corrupt?): {type(e).__name__}: {e}") from None


def _load_unrestricted(data: bytes, source: str, refused: list[str], encoding: str):
    warn_unsafe_load(source, refused)
    try:
        return pickle.Unpickler(io.BytesIO(data), encoding=encoding).load()
    except Exception as e:
        raise CorruptPickleError(f"cannot unpickle {source}: {type(e).__name__}: {e}") from e


def safe_loads(
    data: bytes, allow_numpy: bool = False, encoding: str = "ASCII", allow_unsafe: bool | None = None
):
    return safe_load(io.BytesIO(data), allow_numpy=allow_numpy, encoding=encoding, allow_unsafe=allow_unsafe)
