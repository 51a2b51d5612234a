"""One lock per model, across processes: a model folder never holds records of two networks.

``bench run``, sweeps and ``bench eval`` hold the lock of a (protocol hash, defense, seed)
from before its model is trained or reloaded until its last record and its summary are
written; training holds the lock of its checkpoint folder too (two results folders may share
one). A second process on the same model waits, saying what it waits for, then finds the
first one's checkpoint and records and reuses them. The locks are ``filelock`` files
(``.lock``) beside what they guard; they are released when the process ends, however it ends.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

LOCK_NAME = ".lock"


@contextmanager
def held(folder: Path, what: str, progress: bool = True) -> Iterator[None]:
    """Hold ``folder``'s lock (created with its parents); ``what`` names the work in the waiting notice."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(folder / LOCK_NAME))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        if progress:
            print(f"waiting for {folder / LOCK_NAME}: another process is {what}", file=sys.stderr, flush=True)
        lock.acquire()
    try:
        yield
    finally:
        lock.release()
