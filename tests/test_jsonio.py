"""fspai._jsonio: strict JSON sanitising and atomic writes (the one implementation)."""
import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest

from fspai import _jsonio


@dataclasses.dataclass
class _Rec:
    a: float
    b: tuple


def test_jsonable_sanitises_numbers_and_containers():
    data = {"nan": math.nan, "inf": np.float32(np.inf), "i": np.int64(3), "f": np.float64(0.5),
            "b": np.bool_(True), "arr": np.array([[1.0, np.nan]]), "t": (1, 2), "s": {3, 1},
            1: "int key", "p": Path("a/b"), "rec": _Rec(math.inf, (np.int32(1),))}
    out = _jsonio.jsonable(data)
    assert out == {"nan": None, "inf": None, "i": 3, "f": 0.5, "b": True, "arr": [[1.0, None]],
                   "t": [1, 2], "s": [1, 3], "1": "int key", "p": "a/b", "rec": {"a": None, "b": [1]}}
    assert type(out["f"]) is float and type(out["i"]) is int and type(out["b"]) is bool
    text = _jsonio.dumps(data)
    assert "NaN" not in text and "Infinity" not in text and json.loads(text) == out


def test_jsonable_rejects_unknown_objects_naming_the_key():
    with pytest.raises(TypeError, match=r"value\['x'\]\[1\].*object"):
        _jsonio.jsonable({"x": [1, object()]})
    with pytest.raises(TypeError, match="JSON key"):
        _jsonio.jsonable({(1, 2): 3})


def test_write_json_is_atomic_and_cleans_up(tmp_path):
    p = tmp_path / "sub" / "r.json"
    _jsonio.write_json(p, {"v": math.nan})
    assert _jsonio.read_json(p) == {"v": None}
    with pytest.raises(TypeError):
        _jsonio.write_json(p, {"v": object()})
    assert _jsonio.read_json(p) == {"v": None}  # old content intact

    def boom(fh):
        fh.write(b"partial")
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError):
        _jsonio.atomic_write(p, boom)
    assert _jsonio.read_json(p) == {"v": None}
    assert sorted(x.name for x in p.parent.iterdir()) == ["r.json"]  # no temporary left behind
    _jsonio.atomic_write_text(tmp_path / "t.txt", "héllo\n")
    assert (tmp_path / "t.txt").read_text(encoding="utf-8") == "héllo\n"
    (tmp_path / "bad.json").write_text("{nope")
    with pytest.raises(ValueError, match="bad.json"):
        _jsonio.read_json(tmp_path / "bad.json")
