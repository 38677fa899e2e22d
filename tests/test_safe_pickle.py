import os
import pickle

import numpy as np
import pytest

from aofl.data import UnsafePickleError, safe_load, safe_loads
from aofl.io.safe_pickle import scan_globals


class _Payload:
    def __reduce__(self):
        return (os.system, ("touch /tmp/aofl_pwned_marker",))


def test_refuses_os_system_without_running_it(tmp_path):
    marker = "/tmp/aofl_pwned_marker"
    if os.path.exists(marker):
        os.remove(marker)
    data = pickle.dumps({"x": _Payload()})
    with pytest.raises(UnsafePickleError, match="system"):
        safe_loads(data)
    assert not os.path.exists(marker)
    assert any("system" in g for g in scan_globals(data))


def test_loads_plain_data(tmp_path):
    obj = [{"Ses01": ["M", "F"]}, {"Ses01": [0, 1]}, ["Ses01"]]
    p = tmp_path / "x.pkl"
    p.write_bytes(pickle.dumps(obj, protocol=4))
    assert safe_load(p) == obj


def test_numpy_only_when_allowed():
    data = pickle.dumps({"a": np.arange(3, dtype=np.float32)})
    with pytest.raises(UnsafePickleError):
        safe_loads(data)
    out = safe_loads(data, allow_numpy=True)
    assert out["a"].tolist() == [0.0, 1.0, 2.0]
