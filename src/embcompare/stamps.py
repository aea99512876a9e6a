"""Content stamps: the sha256 of a file, and checks that a cache still holds what it recorded.

Hashing a multi-GB vectors file takes seconds, so a file's sha256 is remembered under
`paths.cache_dir`/content_stamps.json, keyed by its path, size and modification time; a file
rewritten in place gets a new mtime and is hashed again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from collections.abc import Callable
from pathlib import Path

from embcompare.io import write_atomic, write_text_atomic

log = logging.getLogger("embcompare")

STAMPS_FILE = "content_stamps.json"


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


def content_stamp(path: Path, cache_dir: str | os.PathLike | None) -> str:
    """sha256 of a file, or of a directory's files (name and content, in name order);
    'missing' when there is nothing there (the run then fails with a clear error)."""
    path = Path(path)
    if path.is_file():
        return _remembered_sha256(path, cache_dir)
    if path.is_dir():
        digest = hashlib.sha256()
        for member in sorted(p for p in path.iterdir() if p.is_file()):
            digest.update(f"{member.name}\0{_remembered_sha256(member, cache_dir)}\n".encode())
        return digest.hexdigest()
    return "missing"


def _remembered_sha256(path: Path, cache_dir) -> str:
    stat = path.stat()
    key = str(path.resolve())
    seen = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    stamps_file = Path(cache_dir) / STAMPS_FILE if cache_dir else None
    stamps = _read_stamps(stamps_file)
    known = stamps.get(key, {})
    if {k: known.get(k) for k in seen} == seen and isinstance(known.get("sha256"), str):
        return known["sha256"]
    sha256 = file_sha256(path)
    stamps[key] = {**seen, "sha256": sha256}
    _write_stamps(stamps_file, stamps)
    return sha256


def _read_stamps(stamps_file: Path | None) -> dict:
    if stamps_file is None or not stamps_file.is_file():
        return {}
    try:
        stamps = json.loads(stamps_file.read_text())
    except (OSError, ValueError):
        log.warning("%s is unreadable; file contents will be hashed again", stamps_file)
        return {}
    return stamps if isinstance(stamps, dict) else {}


def _write_stamps(stamps_file: Path | None, stamps: dict) -> None:
    """Best effort: without a writable cache dir the stamp is just computed again next time."""
    if stamps_file is None:
        return
    try:
        stamps_file.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(stamps_file, json.dumps(stamps, indent=1, sort_keys=True))
    except OSError:
        pass


# --- caches that check what they hold ---------------------------------------------------------

MANIFEST = "manifest.json"


def write_manifest(directory: Path, names: list[str]) -> None:
    """Record size and sha256 of each named file of a cache directory."""
    entries = {
        name: {"size": (directory / name).stat().st_size, "sha256": file_sha256(directory / name)}
        for name in names
    }
    (directory / MANIFEST).write_text(json.dumps(entries, indent=1, sort_keys=True) + "\n")


def write_checked_cache(directory: Path, fill: Callable[[Path], list[str]]) -> None:
    """Write a cache directory atomically: `fill(staging)` writes its files and names them, a
    manifest of their sizes and sha256s is added, and the whole directory replaces a damaged
    one in one rename. Another process that finished the same cache first wins quietly."""

    def staged(staging: Path) -> None:
        staging.mkdir()
        write_manifest(staging, fill(staging))
        if directory.exists():  # a damaged cache being rebuilt
            shutil.rmtree(directory)

    directory.parent.mkdir(parents=True, exist_ok=True)
    try:
        write_atomic(directory, staged)
    except OSError:
        if not (directory / MANIFEST).is_file():  # not merely beaten by another process
            raise


def manifest_problem(directory: Path) -> str | None:
    """Why a cache directory no longer holds what its manifest recorded; None when it does."""
    try:
        entries = json.loads((directory / MANIFEST).read_text())
    except FileNotFoundError:
        return f"{directory / MANIFEST} is missing"
    except (OSError, ValueError) as error:
        return f"{directory / MANIFEST} is unreadable ({error})"
    if not isinstance(entries, dict) or not entries:
        return f"{directory / MANIFEST} lists no files"
    for name, recorded in entries.items():
        member = directory / name
        if not member.is_file():
            return f"{member} is missing"
        if member.stat().st_size != recorded.get("size"):
            return f"{member} has {member.stat().st_size} bytes, {recorded.get('size')} recorded"
        if file_sha256(member) != recorded.get("sha256"):
            return f"{member} does not match its recorded sha256"
    return None
