"""One lock per model, across processes: a model folder never holds records of two networks.

``bench run``, sweeps and ``bench eval`` hold the lock of a (protocol hash, defense, seed)
from before its model is trained or reloaded until its last record and its summary are
written; training holds the lock of its checkpoint folder too (two results folders may share
one). A second process on the same model waits, saying what it waits for, then finds the
first one's checkpoint and records and reuses them. The locks are ``filelock`` files in a
``.locks/`` folder at the root of what they guard (``<results>/.locks/``, ``<checkpoints>/.locks/``),
named after the guarded folder, so that a run refused before it writes leaves no folder of its own
behind; the operating system releases them when the process ends, however it ends.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

LOCKS = ".locks"


def lock_path(folder: Path) -> Path:
    """``<root>/.locks/<a>--<b>--<c>.lock`` for a guarded folder ``<root>/<a>/<b>/<c>`` (both layouts are three
    levels deep: ``<protocol>-<hash>/<defense>/seed<N>`` and ``<protocol>/<defense>/seed<N>-<key>``)."""
    folder = Path(folder)
    depth = min(3, len(folder.parts) - 1) or 1
    root = folder.parents[depth - 1]
    return root / LOCKS / ("--".join(folder.parts[-depth:]) + ".lock")


@contextmanager
def held(folder: Path, what: str, progress: bool = True) -> Iterator[None]:
    """Hold the lock of ``folder`` (which need not exist yet); ``what`` names the work in the waiting notice."""
    path = lock_path(folder)
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(path))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        if progress:
            print(f"waiting for {path}: another process is {what}", file=sys.stderr, flush=True)
        lock.acquire()
    try:
        yield
    finally:
        lock.release()
