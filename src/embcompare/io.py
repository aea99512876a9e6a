"""The one atomic writer and the one prefetcher that the stages share."""

from __future__ import annotations

import json
import os
import queue
import shutil
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path


def write_atomic(path: Path, write: Callable[[Path], object]) -> None:
    """Let `write(staging_path)` fill a temporary name beside `path` (a file, or a directory),
    then rename it into place: a reader never sees half a file, and a failed write leaves no
    staging file behind. The name is unique per process and thread, so parallel writers of the
    same path coexist; the last rename wins (for a directory: the first, later ones fail)."""
    path = Path(path)
    staging = path.with_name(f".{path.name}.tmp{os.getpid()}.{threading.get_ident()}")
    try:
        write(staging)
        os.replace(staging, path)
    finally:
        if staging.is_dir():
            shutil.rmtree(staging, ignore_errors=True)
        else:
            staging.unlink(missing_ok=True)


def write_text_atomic(path: Path, text: str) -> None:
    write_atomic(path, lambda staging: staging.write_text(text, encoding="utf-8"))


def write_json_atomic(path: Path, payload: dict) -> None:
    write_text_atomic(path, json.dumps(payload, indent=2, sort_keys=True) + "\n")


def prefetch(items: Iterable, depth: int) -> Iterator:
    """Produce `items` in a thread, up to `depth` ahead of the consumer: NumPy (or file reading)
    prepares the next items while the consumer, which releases the GIL, works on the current one.
    An error in the producer is re-raised in the consumer."""
    slots: queue.Queue = queue.Queue(maxsize=depth)
    done = object()
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                if stop.is_set():
                    return
                slots.put(item)
            slots.put(done)
        except BaseException as error:  # handed over to the consumer, which re-raises it
            slots.put(error)

    worker = threading.Thread(target=produce, daemon=True)
    worker.start()
    try:
        while (item := slots.get()) is not done:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while worker.is_alive():  # unblock a producer waiting on a full queue
            try:
                slots.get_nowait()
            except queue.Empty:
                worker.join(0.01)
