"""The login-node fetch keeps a file only when its sha256 matches, refuses unverifiable
downloads, and does not download again what is already there and correct."""

from __future__ import annotations

import hashlib
from types import SimpleNamespace

import pytest

from unite import fetch
from unite.cli import main
from unite.errors import UserError


@pytest.fixture
def source(tmp_path):
    path = tmp_path / "weights.pth"
    path.write_bytes(b"not really weights" * 1000)
    return path, hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def cli(capsys):
    """`python -m unite fetch ...` in this process: (exit code, stderr)."""

    def call(*args):
        try:
            main(["fetch", *map(str, args)])
            code = 0
        except SystemExit as exc:
            code = exc.code
        return SimpleNamespace(returncode=code, stderr=capsys.readouterr().err)

    return call


def test_a_matching_file_is_stored(cli, source, tmp_path):
    path, digest = source
    out = tmp_path / "assets" / "w.pth"
    run = cli("--url", path.as_uri(), "--sha256", digest, "--out", out)
    assert run.returncode == 0, run.stderr
    assert out.read_bytes() == path.read_bytes()
    # a torch-hub style prefix is accepted too
    again = cli("--url", path.as_uri(), "--sha256", digest[:8], "--out", tmp_path / "b.pth")
    assert again.returncode == 0, again.stderr


def test_a_wrong_digest_leaves_nothing_behind(cli, source, tmp_path):
    path, digest = source
    out = tmp_path / "w.pth"
    wrong = ("0" if digest[0] != "0" else "1") + digest[1:]
    run = cli("--url", path.as_uri(), "--sha256", wrong, "--out", out)
    assert run.returncode == 2
    assert "does not match" in run.stderr and "Traceback" not in run.stderr
    assert not out.exists() and not list(tmp_path.glob("*.part")) + list(tmp_path.glob(".*.tmp"))


def test_no_digest_is_refused_unless_asked(cli, source, tmp_path):
    path, _ = source
    run = cli("--url", path, "--out", tmp_path / "w.pth")
    assert run.returncode == 2 and "refusing an unverifiable download" in run.stderr
    ok = cli("--url", path, "--out", tmp_path / "w.pth", "--allow-unverified")
    assert ok.returncode == 0, ok.stderr


def test_present_file_is_verified_not_fetched_again(cli, source, tmp_path):
    path, digest = source
    out = tmp_path / "w.pth"
    out.write_bytes(path.read_bytes())
    run = cli("--url", "https://unreachable.invalid/w.pth", "--sha256", digest, "--out", out)
    assert run.returncode == 0 and "already present" in run.stderr
    out.write_bytes(b"corrupted")
    bad = cli("--url", "https://unreachable.invalid/w.pth", "--sha256", digest, "--out", out)
    assert bad.returncode == 2 and "does not match" in bad.stderr


def test_digest_format_is_checked():
    with pytest.raises(UserError, match="8 to 64 hex digits"):
        fetch.check_digest("xyz", allow_unverified=False)
