"""A restricted unpickler: research pickles are data, never code.

`pickle.load` executes any global a file names (`os.system` included). This loader refuses
every global except an explicit allow-list, and says which ones a file asked for.
"""
from __future__ import annotations

import io
import pickle
import pickletools
from pathlib import Path

from ..errors import AOFLError

__all__ = ["UnsafePickleError", "safe_load", "safe_loads", "NUMPY_GLOBALS", "scan_globals"]

# What numpy arrays need to be rebuilt, and nothing more (MultiEMO / DialogueRNN pickles).
NUMPY_GLOBALS = frozenset({
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("_codecs", "encode"),  # protocol-2 pickles store array bytes as latin-1 text
})

# Harmless builtins some pickles reference by name.
BUILTIN_GLOBALS = frozenset({
    ("builtins", "set"), ("builtins", "frozenset"), ("builtins", "complex"),
    ("builtins", "slice"), ("builtins", "range"), ("collections", "OrderedDict"),
})


class UnsafePickleError(AOFLError, pickle.UnpicklingError):
    """Raised when a pickle names a global outside the allow-list."""


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file, allowed, **kw):
        super().__init__(file, **kw)
        self._allowed = allowed

    def find_class(self, module, name):
        if (module, name) in self._allowed:
            return super().find_class(module, name)
        raise UnsafePickleError(
            f"refused to load global '{module}.{name}': this file asks to run or build code "
            f"that is not on the allow-list (only plain data and numpy arrays are accepted)")


def safe_load(path_or_file, allow_numpy: bool = False, encoding: str = "ASCII"):
    """Unpickle plain data (dict, list, str, numbers; numpy arrays if allow_numpy)."""
    allowed = set(BUILTIN_GLOBALS)
    if allow_numpy:
        allowed |= NUMPY_GLOBALS
    if isinstance(path_or_file, (str, Path)):
        with open(path_or_file, "rb") as f:
            return _RestrictedUnpickler(f, allowed, encoding=encoding).load()
    return _RestrictedUnpickler(path_or_file, allowed, encoding=encoding).load()


def safe_loads(data: bytes, allow_numpy: bool = False, encoding: str = "ASCII"):
    return safe_load(io.BytesIO(data), allow_numpy=allow_numpy, encoding=encoding)


def scan_globals(data: bytes) -> list[str]:
    """Names of all globals a pickle stream references, found without unpickling it."""
    names: list[str] = []
    strings: list[str] = []
    try:
        for op, arg, _ in pickletools.genops(data):
            if op.name in ("SHORT_BINUNICODE", "BINUNICODE", "UNICODE", "BINUNICODE8"):
                strings.append(arg)
            elif op.name == "GLOBAL":
                names.append(arg.replace(" ", "."))
            elif op.name == "STACK_GLOBAL" and len(strings) >= 2:
                names.append(f"{strings[-2]}.{strings[-1]}")
    except Exception:  # a truncated stream: report what was found so far
        pass
    return sorted(set(names))
