"""Atomic file writes: a temp file in the destination folder, then ``os.replace``.

Every artefact a job writes (checkpoints, sample files, metric JSON, reference statistics)
goes through here, so a job killed mid-write leaves the old file or none, never half a file.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


@contextlib.contextmanager
def atomic_write(path: str | Path, mode: str = "wb", fsync: bool = False):
    """``with atomic_write(p) as fh: ...`` writes ``fh`` to ``p`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode) as fh:
            yield fh
            if fsync:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
