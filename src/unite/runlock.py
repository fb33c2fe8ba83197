"""One trainer per run folder: an exclusive ``flock`` on ``RUN/.lock``.

Two trainers in one folder (an orphan left by a killed Snakemake after ``--unlock``, a job
submitted twice) would both append to ``metrics.jsonl`` and overwrite each other's
checkpoints while each exits 0. The kernel releases a ``flock`` when its process dies, however
it dies, so the lock of a killed trainer never blocks the next one; the file itself stays, with
the last holder's pid and host as a hint for the message. On NFS, Linux maps ``flock`` to
byte-range locks that the server tracks, so the lock also holds across nodes there.
"""

from __future__ import annotations

import errno
import fcntl
import os
import socket
import sys
import time
from pathlib import Path

from unite.errors import UserError

LOCK_NAME = ".lock"
UNSUPPORTED = {errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS}


class RunLock:
    """``with RunLock(run_dir): ...`` or ``acquire()`` / ``release()``."""

    def __init__(self, run_dir: str | Path):
        self.path = Path(run_dir) / LOCK_NAME
        self.fd: int | None = None

    def acquire(self) -> RunLock:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if not isinstance(exc, BlockingIOError) and exc.errno in UNSUPPORTED:
                os.close(fd)  # e.g. NFS mounted with `nolock`: train, but say it is unguarded
                print(f"warning: cannot lock {self.path} ({exc.strerror}); a second trainer on "
                      "this folder would not be refused", file=sys.stderr)
                return self
            if not isinstance(exc, BlockingIOError):
                os.close(fd)
                raise
            holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "unknown process"
            os.close(fd)
            raise UserError(
                f"run folder {self.path.parent} is in use by another trainer ({holder}); wait "
                "for it to finish or stop it: two trainers in one folder overwrite each other's "
                "checkpoints and metrics"
            ) from None
        os.ftruncate(fd, 0)
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()} since {stamp}\n".encode(), 0)
        self.fd = fd
        return self

    def release(self) -> None:
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
