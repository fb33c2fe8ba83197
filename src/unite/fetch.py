"""``python -m unite fetch``: download one file (feature-network weights, a dataset CSV) and
check its sha256 before anyone uses it.

The workflow runs this on the login node (compute nodes often have no internet) and only for
assets without a configured local path. A download whose digest does not match is deleted, so
a truncated or substituted file never reaches an evaluation. The digest may be a full sha256 or
a prefix of at least 8 hex digits (torch hub's file names carry such a prefix); a file with no
digest at all is refused unless ``--allow-unverified`` is given.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import sys
import urllib.error
import urllib.request
from pathlib import Path

from unite.atomic import atomic_write
from unite.errors import UserError

CHUNK = 1 << 20


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def check_digest(expected: str, *, allow_unverified: bool) -> str:
    expected = (expected or "").strip().lower()
    if not expected:
        if allow_unverified:
            return ""
        raise UserError(
            "no sha256 given: refusing an unverifiable download (set the asset's sha256 in the "
            "workflow config, give a local path instead, or pass --allow-unverified)"
        )
    if not re.fullmatch(r"[0-9a-f]{8,64}", expected):
        raise UserError(f"--sha256 {expected!r}: expected 8 to 64 hex digits")
    return expected


def verify(path: Path, expected: str) -> str:
    """The file's sha256; raises (and names both digests) when it does not match."""
    actual = file_sha256(path)
    if expected and not actual.startswith(expected):
        raise UserError(f"{path}: sha256 {actual} does not match the expected {expected}")
    return actual


def download(url: str, out: Path, expected: str, *, timeout: float = 60.0) -> str:
    """Fetch ``url`` through :func:`unite.atomic.atomic_write`: the file appears at ``out`` only
    once its digest matches (a failed or mismatched download leaves nothing behind)."""
    h = hashlib.sha256()
    try:
        with atomic_write(out, "wb") as fh:
            if "://" not in url:  # a plain path: copying a file fetched by hand is fine too
                if not Path(url).is_file():
                    raise UserError(f"--url {url}: no such file")
                with open(url, "rb") as src:
                    for block in iter(lambda: src.read(CHUNK), b""):
                        fh.write(block)
                        h.update(block)
            else:
                from tqdm import tqdm

                with urllib.request.urlopen(url, timeout=timeout) as response:
                    total = int(response.headers.get("Content-Length") or 0) or None
                    with tqdm(total=total, unit="B", unit_scale=True, desc=out.name,
                              file=sys.stderr) as bar:
                        for block in iter(lambda: response.read(CHUNK), b""):
                            fh.write(block)
                            h.update(block)
                            bar.update(len(block))
            actual = h.hexdigest()
            if expected and not actual.startswith(expected):
                raise UserError(f"{url}: sha256 {actual} does not match the expected {expected}")
        return actual
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        raise UserError(f"cannot download {url}: {exc}") from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", required=True, help="http(s)/file URL, or a local path")
    parser.add_argument("--out", required=True, help="where the verified file is stored")
    parser.add_argument("--sha256", default="", help="expected digest (or a prefix of >= 8 hex)")
    parser.add_argument("--allow-unverified", action="store_true",
                        help="accept a download without a digest (not recommended)")
    parser.add_argument("--timeout", type=float, default=60.0, help="network timeout (seconds)")


def run(args: argparse.Namespace) -> None:
    expected = check_digest(args.sha256, allow_unverified=args.allow_unverified)
    out = Path(args.out)
    if out.is_file():  # already there: verify instead of downloading again
        digest = verify(out, expected)
        print(f"fetch: {out} already present, sha256 {digest}", file=sys.stderr)
        return
    digest = download(args.url, out, expected, timeout=args.timeout)
    print(f"fetch: {args.url} -> {out}, sha256 {digest}", file=sys.stderr)
