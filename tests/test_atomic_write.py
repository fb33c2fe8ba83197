"""Artefacts are replaced whole or not at all: a failing write keeps the old file."""

import json

import pytest

from unite.artifacts import write_result
from unite.atomic import atomic_write


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path):
    path = tmp_path / "out" / "metrics.json"
    write_result(path, {"fid": 1.0})
    with pytest.raises(RuntimeError), atomic_write(path, "w") as fh:
        fh.write('{"fid": ')
        raise RuntimeError("killed mid-write")
    assert json.loads(path.read_text()) == {"fid": 1.0}
    assert [p.name for p in path.parent.iterdir()] == ["metrics.json"]


def test_a_nan_metric_is_refused_before_anything_is_written(tmp_path):
    path = tmp_path / "metrics.json"
    with pytest.raises(ValueError):
        write_result(path, {"fid": float("nan")})
    assert not path.exists() and list(tmp_path.iterdir()) == []
