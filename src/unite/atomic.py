"""Atomic file writes: a temp file in the destination folder, then ``os.replace``.

Every file a command writes (checkpoints, prepared datasets, sample files, metric JSON,
reference statistics, tables, figures, the run's ``config.yaml``) goes through
:func:`atomic_write`, so a job that is killed or runs out of disk mid-write leaves the old
file or none, never half a file. Three details matter in practice:

* the finished file gets the permissions of the umask, like a plain ``open(..., "w")``
  (``tempfile.mkstemp`` alone would leave it 0600, unreadable for the rest of a group);
* a temp file carries its writer's host and pid (``.NAME.HOST.PID.RANDOM.tmp``); the next
  write into the same folder deletes temps whose writer is dead (a killed checkpoint writer
  leaves one as large as a checkpoint) and leaves those of live writers alone;
* inside ``with file_set():`` the files of the block are all replaced at its end, or none
  is (the tables of one ``unite tables`` call: a full disk halfway leaves the old set);
* a full disk, a quota, a file-size limit or a read-only folder becomes a
  :class:`unite.errors.UserError` naming the file and the cause, even when the library that
  was writing (torch, numpy's zip writer) wrapped the ``OSError`` in its own exception.
"""

from __future__ import annotations

import contextlib
import contextvars
import errno
import os
import re
import socket
import tempfile
from pathlib import Path

from unite.errors import UserError

# causes a user can act on (free space, raise a limit, fix permissions), reported in one line
ENVIRONMENT_ERRNOS = frozenset(
    {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EACCES, errno.EPERM}
)
_TEMP = re.compile(r"^\.(?P<name>.+)\.(?P<host>[^.]+)\.(?P<pid>\d+)\.[^.]+\.tmp$")


def _host() -> str:
    return socket.gethostname().replace(".", "-") or "host"


def umask() -> int:
    """The process umask: from /proc on Linux, else by setting and restoring it."""
    with contextlib.suppress(OSError, ValueError, StopIteration):
        with open("/proc/self/status") as fh:
            line = next(ln for ln in fh if ln.startswith("Umask:"))
        return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def clean_stale_temps(folder: str | Path, name: str | None = None) -> list[Path]:
    """Delete temp files in ``folder`` (of ``name`` only, if given) left by dead writers on
    this host. Temps of live writers, of other hosts and foreign files are kept."""
    folder = Path(folder)
    removed = []
    try:
        entries = list(folder.iterdir())
    except OSError:
        return removed
    host = _host()
    for p in entries:
        m = _TEMP.match(p.name)
        if not m or (name is not None and m["name"] != name) or m["host"] != host:
            continue
        if _alive(int(m["pid"])):
            continue
        with contextlib.suppress(OSError):
            p.unlink()
            removed.append(p)
    return removed


def environment_error(path: str | Path, exc: OSError) -> UserError:
    """An ``OSError`` of the ENVIRONMENT_ERRNOS kind as one line naming the file."""
    code = errno.errorcode.get(exc.errno or 0, "")
    reason = exc.strerror or str(exc)
    return UserError(f"cannot write {path}: {reason}" + (f" ({code})" if code else ""))


def check_writable(folder: str | Path) -> Path:
    """Prove that a file can be created in ``folder`` (or, while it does not exist yet, in its
    nearest existing parent, which must then let us create it), so that a read-only output
    folder stops a command at its start, not after hours of work. Creates nothing."""
    folder = Path(folder)
    probe_in = folder
    while not probe_in.exists() and probe_in != probe_in.parent:
        probe_in = probe_in.parent
    try:
        if not probe_in.is_dir():
            raise NotADirectoryError(errno.ENOTDIR, f"{probe_in} is not a folder")
        fd, probe = tempfile.mkstemp(prefix=".write-probe.", suffix=".tmp", dir=probe_in)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise UserError(f"output folder {folder} is not writable: {reason}") from None
    return folder


class _Recorder:
    """File proxy that remembers the ``OSError`` of a failed write: torch.save and zipfile
    re-raise it as their own exception type, which would hide "No space left on device"."""

    def __init__(self, fh):
        self._fh = fh
        self.error: OSError | None = None

    def write(self, data):
        try:
            return self._fh.write(data)
        except OSError as exc:
            self.error = self.error or exc
            raise

    def __getattr__(self, name):
        return getattr(self._fh, name)

    def __iter__(self):
        return iter(self._fh)


# (temp, destination) pairs of the innermost open file_set(), or None outside one
_PENDING: contextvars.ContextVar[list[tuple[str, Path]] | None] = contextvars.ContextVar(
    "unite_atomic_pending", default=None)


@contextlib.contextmanager
def file_set():
    """Make the files written in the block one unit: each is finished as a temp file, and
    the temps replace their destinations only once the whole block has succeeded. If any
    write (or anything else in the block) fails, every temp is deleted and every destination
    keeps its previous content. Only the final renames can leave a mixed set, and a rename
    within one folder does not need disk space."""
    pending: list[tuple[str, Path]] = []
    token = _PENDING.set(pending)
    try:
        yield
    except BaseException:
        for tmp, _ in pending:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        raise
    finally:
        _PENDING.reset(token)
    for tmp, path in pending:
        os.replace(tmp, path)


@contextlib.contextmanager
def atomic_write(path: str | Path, mode: str = "wb", fsync: bool = False, **open_kwargs):
    """``with atomic_write(p) as fh: ...`` writes ``fh`` to ``p`` only if the block succeeds.
    ``open_kwargs`` go to ``open`` (e.g. ``newline=""`` for csv)."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        if exc.errno in ENVIRONMENT_ERRNOS:
            raise environment_error(path, exc) from None
        raise
    clean_stale_temps(path.parent, path.name)
    try:
        fd, tmp = tempfile.mkstemp(
            prefix=f".{path.name}.{_host()}.{os.getpid()}.", suffix=".tmp", dir=path.parent
        )
    except OSError as exc:
        if exc.errno in ENVIRONMENT_ERRNOS:
            raise environment_error(path, exc) from None
        raise
    recorder = None
    try:
        os.fchmod(fd, 0o666 & ~umask())
        with os.fdopen(fd, mode, **open_kwargs) as fh:
            recorder = _Recorder(fh)
            yield recorder
            if fsync:
                fh.flush()
                os.fsync(fh.fileno())
        pending = _PENDING.get()
        if pending is None:
            os.replace(tmp, path)
        else:
            pending.append((tmp, path))
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        cause = recorder.error if recorder is not None and recorder.error else exc
        if isinstance(cause, OSError) and cause.errno in ENVIRONMENT_ERRNOS:
            raise environment_error(path, cause) from None
        raise
