"""A clone works wherever it is placed: nothing in the repository reads a folder beside it,
the offline data it ships matches the digests in data/README.md and stays small, and
`snakemake --profile slurm` typed in the clone's root finds the project's profile."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "data"
MAX_BYTES = 2 * 1024 * 1024
# written in pieces so that this file does not match itself
OUTSIDE_PATHS = ("../" + "shared", "shared" + "/data", "/work" + "/shared")


def repository_files() -> list[Path]:
    """Tracked files plus new ones git would add (not ignored), as regular files."""
    if not shutil.which("git") or not (REPO / ".git").exists():
        pytest.skip("not a git checkout: the file list comes from git")
    out = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO, capture_output=True, check=True, timeout=60,
    ).stdout.decode()
    files = [REPO / name for name in out.split("\0") if name]
    return [f for f in files if f.is_file() and not f.is_symlink()]


def test_nothing_refers_to_a_folder_beside_the_clone():
    hits = []
    for path in repository_files():
        text = path.read_bytes().decode("utf-8", errors="ignore")
        for lineno, line in enumerate(text.splitlines(), 1):
            if any(p in line for p in OUTSIDE_PATHS):
                hits.append(f"{path.relative_to(REPO)}:{lineno}: {line.strip()[:100]}")
    assert not hits, "references outside the repository:\n" + "\n".join(hits)


def test_no_file_in_the_repository_exceeds_2_mb():
    big = [f"{p.relative_to(REPO)} ({p.stat().st_size} bytes)" for p in repository_files()
           if p.stat().st_size > MAX_BYTES]
    assert not big, big


def listed_digests() -> dict[str, str]:
    """`| \\`path\\` | ... | \\`sha256\\` |` rows of data/README.md's table."""
    rows = re.findall(r"^\| `([^`]+)` \|.*\| `([0-9a-f]{64})` \|$",
                      (DATA / "README.md").read_text(), flags=re.M)
    return dict(rows)


def test_shipped_data_matches_the_digests_in_its_readme():
    listed = listed_digests()
    in_git = set(repository_files())
    present = {str(p.relative_to(DATA)) for p in DATA.rglob("*")
               if p in in_git and p != DATA / "README.md"}
    assert present, "no data files in data/"
    assert present == set(listed), (
        f"data/README.md lists {sorted(listed)}, data/ holds {sorted(present)}")
    for name, digest in listed.items():
        assert hashlib.sha256((DATA / name).read_bytes()).hexdigest() == digest, name


def test_embedded_crystal_config_reads_the_repository_data():
    from unite import config

    cfg = config.load(str(REPO / "config/experiments/perov-tiny.yaml"), [])
    assert cfg.data.root == "data/perov_5"
    assert sorted(p.name for p in (REPO / cfg.data.root).iterdir() if ".csv" in p.name) == [
        "test.csv.gz", "val.csv.gz"]


def test_profile_name_slurm_resolves_to_the_projects_profile(monkeypatch, tmp_path):
    pytest.importorskip("snakemake")
    from snakemake.cli import get_profile_dir

    # an empty user config folder: the lookup must not depend on ~/.config/snakemake
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    monkeypatch.chdir(REPO)  # users run snakemake in the clone's root
    found = get_profile_dir("slurm")
    assert found is not None, "`--profile slurm` finds no profile in the repository root"
    folder, config_file = found
    assert os.path.samefile(config_file, REPO / "profiles" / "slurm" / "config.yaml")
    assert "executor: slurm" in config_file.read_text()


def test_no_default_profile_overrides_the_named_ones():
    # snakemake loads profiles/default/ on every run and lets it override --profile key by key
    assert not (REPO / "profiles" / "default").exists()
