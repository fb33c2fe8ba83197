"""A write that fails (disk full, file-size limit) keeps the previous file byte-identical and
says why in one line; finished files get the umask's permissions; temp files of killed
writers are removed by the next writer."""

from __future__ import annotations

import errno
import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from unite import atomic, checkpoint, cli, tables
from unite.errors import UserError

REPO = Path(__file__).resolve().parents[1]
LIMITED = ("import resource, sys; resource.setrlimit(resource.RLIMIT_FSIZE, ({n}, {n})); "
           "from unite.cli import main; main(sys.argv[1:])")


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def run_with_file_size_limit(limit: int, *argv: str):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run([sys.executable, "-c", LIMITED.format(n=limit), *argv], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=300)


def test_prepare_past_a_file_size_limit_keeps_the_good_dataset_file(tmp_path):
    out = tmp_path / "data" / "digits.npz"
    args = ("prepare", "--config", "config/experiments/digits.yaml", "--out", str(out))
    first = run_with_file_size_limit(10**9, *args)
    assert first.returncode == 0, first.stderr
    before = digest(out)
    assert out.stat().st_size > 20_000

    run = run_with_file_size_limit(20_000, *args)
    assert run.returncode == 2, run.stderr
    assert run.stderr.count("\n") == 1 and "Traceback" not in run.stderr, run.stderr
    assert f"cannot write {out}: File too large (EFBIG)" in run.stderr
    assert digest(out) == before and leftovers(out.parent) == []


def fill_disk(monkeypatch) -> None:
    """From now on every file opened by atomic_write takes 10 bytes, then reports ENOSPC."""
    real = os.fdopen

    class Full:
        def __init__(self, fh):
            self.fh = fh

        def write(self, data):
            self.fh.write(data[:10])
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        def __getattr__(self, name):
            return getattr(self.fh, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.fh.close()

    monkeypatch.setattr(atomic.os, "fdopen", lambda fd, *a, **k: Full(real(fd, *a, **k)))


def make_tables(tmp_path: Path) -> Path:
    results = tmp_path / "results"
    out = results / "tables"
    metrics = results / "metrics" / "digits"
    metrics.mkdir(parents=True)
    (metrics / "gen_heun-balanced.json").write_text(
        '{"experiment": "digits", "kind": "gen_images", "metrics": {"fid_digits": 1.5}, '
        '"scale": {}, "flags": []}')
    cli.main(["tables", "--results", str(results), "--out", str(out), "--role", "unite-b=digits"])
    return out


def test_tables_on_a_full_disk_keep_the_previous_tables(tmp_path, monkeypatch, capsys):
    out = make_tables(tmp_path)
    before = {p.name: digest(p) for p in out.iterdir()}
    assert len(before) == len(tables.ALL_STEMS) * len(tables.TABLE_FORMATS)

    capsys.readouterr()
    fill_disk(monkeypatch)
    with pytest.raises(SystemExit) as exc:
        cli.main(["tables", "--results", str(tmp_path / "results"), "--out", str(out)])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "No space left on device (ENOSPC)" in err and str(out) in err
    assert {p.name: digest(p) for p in out.iterdir()} == before


def test_tables_failing_halfway_keep_the_whole_previous_set(tmp_path, monkeypatch, capsys):
    """The disk fills after some tables were already written: none of the new ones lands,
    so the folder never mixes tables of two different result sets."""
    out = make_tables(tmp_path)
    before = {p.name: digest(p) for p in out.iterdir()}
    # new results, so that every table would change
    (tmp_path / "results" / "metrics" / "digits" / "gen_heun-balanced.json").write_text(
        '{"experiment": "digits", "kind": "gen_images", "metrics": {"fid_digits": 7.25}, '
        '"scale": {}, "flags": []}')
    real, calls = tables.to_latex, []

    def latex_then_full(stem, lines):
        calls.append(stem)
        if len(calls) == 3:  # the third table's .tex: files of two tables are already done
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(stem, lines)

    monkeypatch.setattr(tables, "to_latex", latex_then_full)
    with pytest.raises(SystemExit) as exc:  # one line naming the cause, no stack trace
        cli.main(["tables", "--results", str(tmp_path / "results"), "--out", str(out),
                  "--role", "unite-b=digits"])
    assert exc.value.code == 2 and "ENOSPC" in capsys.readouterr().err
    assert len(calls) == 3
    assert {p.name: digest(p) for p in out.iterdir()} == before  # no temp left behind either

    monkeypatch.setattr(tables, "to_latex", real)
    cli.main(["tables", "--results", str(tmp_path / "results"), "--out", str(out),
              "--role", "unite-b=digits"])
    assert {p.name: digest(p) for p in out.iterdir()} != before
    assert "7.25" in "".join(p.read_text() for p in out.glob("*.md"))


def test_a_checkpoint_on_a_full_disk_names_the_cause(tmp_path, monkeypatch):
    """torch.save wraps the OSError in a RuntimeError; the message must still say ENOSPC."""
    fill_disk(monkeypatch)
    path = tmp_path / "last.pt"
    with pytest.raises(UserError, match=r"cannot write .*last.pt: No space left on device \(ENOSPC\)"):
        checkpoint.save_atomic({"model": torch.zeros(1000)}, path)
    assert list(tmp_path.iterdir()) == []


def test_outputs_get_the_umask_permissions(tmp_path):
    old = os.umask(0o027)
    try:
        with atomic.atomic_write(tmp_path / "a.json", "w") as fh:
            fh.write("{}")
    finally:
        os.umask(old)
    assert (tmp_path / "a.json").stat().st_mode & 0o777 == 0o640
    with atomic.atomic_write(tmp_path / "b.json", "w") as fh:
        fh.write("{}")
    assert (tmp_path / "b.json").stat().st_mode & 0o777 == 0o666 & ~old


def test_temps_of_dead_writers_are_removed_by_the_next_write(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    host = atomic._host()
    stale = tmp_path / f".last.pt.{host}.{dead}.abc123.tmp"
    live = tmp_path / f".last.pt.{host}.{os.getpid()}.def456.tmp"  # a writer still running
    other_host = tmp_path / f".last.pt.elsewhere.{dead}.ghi789.tmp"
    foreign = tmp_path / "notes.tmp"
    for p in (stale, live, other_host, foreign):
        p.write_bytes(b"x" * 1000)
    checkpoint.save_atomic({"model": torch.zeros(3)}, tmp_path / "last.pt")
    assert not stale.exists()
    assert live.exists() and other_host.exists() and foreign.exists()
