"""Many writer processes into one folder: no record or checkpoint is ever torn or lost.

Eight processes write 50 times each, half to paths every process writes (the race) and
half to their own, while a reader process keeps reading the contested files. Payloads are
large (64 kB records, 256 kB checkpoints) so that a non-atomic write would be seen
half-done: every read must be one complete write, by whichever writer came last.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
from pathlib import Path

import torch

from bench.records import write_json_atomic
from bench.training.checkpoint import load_checkpoint, save_checkpoint

WRITERS, WRITES, SHARED, OWN = 8, 50, 3, 4
# fork: the children only write files; it spares each of them importing torch again
CTX = multiprocessing.get_context("fork")


def _payload(writer: int, seq: int) -> str:
    return f"<{writer}:{seq}>" * (64_000 // len(f"<{writer}:{seq}>"))


def _path(root: Path, writer: int, seq: int, suffix: str) -> Path:
    """Even writes go to a contested path, odd ones to the writer's own."""
    if seq % 2 == 0:
        return root / f"shared{seq // 2 % SHARED}{suffix}"
    return root / f"own{writer}_{seq // 2 % OWN}{suffix}"


def _json_writer(root: Path, writer: int, barrier) -> None:
    barrier.wait()
    for seq in range(WRITES):
        text = _payload(writer, seq)
        write_json_atomic(_path(root, writer, seq, ".json"), {"writer": writer, "seq": seq, "payload": text,
                                                             "digest": hashlib.sha256(text.encode()).hexdigest()})


def _checkpoint_writer(root: Path, writer: int, barrier) -> None:
    barrier.wait()
    for seq in range(WRITES):
        save_checkpoint({"model": {"w": torch.full((256, 256), float(writer * 1000 + seq))}, "writer": writer, "seq": seq},
                        _path(root, writer, seq, ".pt"))


def _complete_json(path: Path) -> tuple[int, int]:
    data = json.loads(path.read_text())
    assert hashlib.sha256(data["payload"].encode()).hexdigest() == data["digest"]
    assert data["payload"] == _payload(data["writer"], data["seq"])
    return data["writer"], data["seq"]


def _complete_checkpoint(path: Path) -> tuple[int, int]:
    state = load_checkpoint(path)
    writer, seq = int(state["writer"]), int(state["seq"])
    assert torch.equal(state["model"]["w"], torch.full((256, 256), float(writer * 1000 + seq)))
    return writer, seq


def _reader(root: Path, suffix: str, done, errors) -> None:
    """Reads the contested files until the writers finish; counts reads that were not one complete write."""
    check = _complete_json if suffix == ".json" else _complete_checkpoint
    reads = bad = 0
    while not done.is_set():
        for i in range(SHARED):
            path = root / f"shared{i}{suffix}"
            if path.exists():
                try:
                    check(path)
                    reads += 1
                except Exception:
                    bad += 1
    errors.put((reads, bad))


def _hammer(root: Path, writer, suffix: str) -> None:
    barrier, done, errors = CTX.Barrier(WRITERS), CTX.Event(), CTX.Queue()
    reader = CTX.Process(target=_reader, args=(root, suffix, done, errors))
    reader.start()
    writers = [CTX.Process(target=writer, args=(root, w, barrier)) for w in range(WRITERS)]
    for p in writers:
        p.start()
    for p in writers:
        p.join(timeout=120)
    done.set()
    reads, bad = errors.get(timeout=60)
    reader.join(timeout=60)
    assert [p.exitcode for p in writers] == [0] * WRITERS
    assert bad == 0 and reads > 0, f"{bad} torn read(s) out of {reads + bad}"


def _check_folder(root: Path, suffix: str, complete) -> None:
    assert sorted(p.name for p in root.iterdir()) == sorted(
        [f"shared{i}{suffix}" for i in range(SHARED)] + [f"own{w}_{j}{suffix}" for w in range(WRITERS) for j in range(OWN)])
    for i in range(SHARED):  # the contested files: one complete write meant for this path
        writer, seq = complete(root / f"shared{i}{suffix}")
        assert seq % 2 == 0 and seq // 2 % SHARED == i and 0 <= writer < WRITERS
    for w in range(WRITERS):  # each writer's own files: its last write to them
        for j in range(OWN):
            assert complete(root / f"own{w}_{j}{suffix}") == (w, max(s for s in range(1, WRITES, 2) if s // 2 % OWN == j))


def test_concurrent_record_writers_never_tear_or_lose_a_record(tmp_path):
    _hammer(tmp_path, _json_writer, ".json")
    _check_folder(tmp_path, ".json", _complete_json)  # also: no temporary file left behind


def test_concurrent_checkpoint_writers_never_tear_a_checkpoint(tmp_path):
    _hammer(tmp_path, _checkpoint_writer, ".pt")
    _check_folder(tmp_path, ".pt", _complete_checkpoint)
