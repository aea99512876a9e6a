"""Put the data files that configs declare into the data directory, sha256-checked.

Any mapping in a config with both `path` and `sha256` is a file entry. A file comes from
the mirror directory when one is given (DATA_MIRROR, same layout as the data directory),
otherwise from the entry's `url`. Either way it is written under a temporary name and only
renamed into place once its sha256 matches, so an interrupted fetch never leaves a
truncated file under the final name.

    python -m embcompare.data.fetch [--data-dir DIR] [--mirror DIR] [--only dataset/mr ...]
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import http.client
import os
import re
import shutil
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import BinaryIO

import yaml
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException
from tqdm import tqdm

from embcompare.config import CONF_DIR as DEFAULT_CONF_DIR
from embcompare.errors import EmbcompareError
from embcompare.io import write_atomic

GROUPS = ("dataset", "similarity", "corpus")
CHUNK_BYTES = 1 << 20
TIMEOUT_S = 60
SIDECAR_SUFFIX = ".sha256"
_SHA256_RE = re.compile(r"[0-9a-f]{64}")


# --- finding file entries ----------------------------------------------------------------


def file_entries(node) -> list[dict]:
    """Every mapping with both `path` and `sha256` keys, found anywhere inside `node`; one whose
    sha256 is null (dataset=file's user file, read in place) is not fetched."""
    found: list[dict] = []
    _collect_entries(node, found)
    return found


def _collect_entries(node, found: list[dict]) -> None:
    if OmegaConf.is_config(node):
        # resolve=False: an interpolation elsewhere in the config must not stop a fetch
        node = OmegaConf.to_container(node, resolve=False)
    if isinstance(node, Mapping):
        if "path" in node and node.get("sha256") is not None:
            found.append(dict(node))
        for value in node.values():
            _collect_entries(value, found)
    elif isinstance(node, Sequence) and not isinstance(node, str | bytes):
        for item in node:
            _collect_entries(item, found)


def _config_files(conf_dir: Path, selector: str) -> list[Path]:
    """`dataset` means every yaml in conf/dataset; `dataset/mr` means conf/dataset/mr.yaml."""
    if "/" in selector:
        path = conf_dir / f"{selector}.yaml"
        if not path.is_file():
            group = conf_dir / selector.split("/", 1)[0]
            known = sorted(p.stem for p in group.glob("*.yaml")) if group.is_dir() else []
            raise EmbcompareError(f"{path}: no such config; known in {group}: {known}")
        return [path]
    group = conf_dir / selector
    if not group.is_dir():
        raise EmbcompareError(f"{group}: no such config group directory")
    return sorted(group.glob("*.yaml"))


def _load_entries(config_path: Path) -> list[dict]:
    try:
        config = OmegaConf.load(config_path)
    except (yaml.YAMLError, OmegaConfBaseException) as error:
        reason = " ".join(str(error).split())
        raise EmbcompareError(f"{config_path}: not valid YAML ({reason})") from None
    return file_entries(config)


def collect_entries(conf_dir: Path, selectors: Iterable[str] = GROUPS) -> list[dict]:
    """File entries of the selected configs, one per path (first seen wins)."""
    by_path: dict[str, tuple[dict, Path]] = {}
    for selector in selectors:
        for config_path in _config_files(Path(conf_dir), selector):
            for entry in _load_entries(config_path):
                _add_unique(by_path, entry, config_path)
    return [entry for entry, _ in by_path.values()]


def _add_unique(by_path: dict, entry: dict, config_path: Path) -> None:
    path = str(entry["path"])
    if path not in by_path:
        by_path[path] = (entry, config_path)
        return
    earlier, earlier_config = by_path[path]
    if str(earlier["sha256"]).lower() != str(entry["sha256"]).lower():
        raise EmbcompareError(
            f"{config_path}: file {path} has sha256 {entry['sha256']}, but {earlier_config} "
            f"gives {earlier['sha256']} for the same path; make them agree"
        )


# --- hashing and the digest cache ----------------------------------------------------------


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + SIDECAR_SUFFIX)


def _cached_digest(path: Path, stat: os.stat_result) -> str | None:
    try:
        size, mtime_ns, digest = _sidecar(path).read_text().split()
    except (OSError, ValueError):
        return None
    unchanged = (int(size), int(mtime_ns)) == (stat.st_size, stat.st_mtime_ns)
    return digest if unchanged else None


def _remember_digest(path: Path, stat: os.stat_result, digest: str) -> None:
    # a read-only data dir (say, the mirror itself) works without the cache: it re-hashes.
    # The mode bits are checked too because root may write where they say not to.
    with contextlib.suppress(OSError):
        if path.parent.stat().st_mode & 0o222:
            _sidecar(path).write_text(f"{stat.st_size} {stat.st_mtime_ns} {digest}\n")


def _current_digest(path: Path) -> str:
    # stat before hashing: a file changed mid-hash then fails the size/mtime test next time
    stat = path.stat()
    digest = _cached_digest(path, stat)
    if digest is None:
        digest = sha256_of(path)
        _remember_digest(path, stat, digest)
    return digest


# --- getting one file ----------------------------------------------------------------------


def ensure_file(entry: Mapping, data_dir: Path, mirror: str | None) -> Path:
    """Return data_dir/entry.path with the declared sha256, copying or downloading it if missing."""
    relative, expected = _checked_entry(entry)
    target = Path(data_dir) / relative
    if target.exists():
        actual = _current_digest(target)
        if actual != expected:
            raise EmbcompareError(
                f"{target}: sha256 is {actual}, expected {expected}; the file is damaged or a "
                "different version: delete it and run `embcompare data` again"
            )
        return target
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise _unwritable(target, error) from None
    if mirror:
        source = Path(mirror) / relative
        _install(target, expected, str(source), lambda out: _copy_from_mirror(source, mirror, out))
    else:
        url = _url_or_explain(entry, relative, target)
        try:
            _install(target, expected, url, lambda out: _download(url, out, relative.name))
        except EmbcompareError as error:  # say which data file was wanted, not only the URL
            raise EmbcompareError(f"{target} is missing and {error}") from None
    return target


def _checked_entry(entry: Mapping) -> tuple[PurePosixPath, str]:
    relative = PurePosixPath(str(entry["path"]))
    if relative.is_absolute() or ".." in relative.parts or not relative.parts:
        raise EmbcompareError(
            f"file entry path={entry['path']!r} must be relative to the data dir, without '..'"
        )
    if entry.get("sha256") is None:
        raise EmbcompareError(
            f"file entry {relative}: sha256 is missing; add `sha256: <64 hex digits>` (the "
            "output of `sha256sum`) to its config entry"
        )
    expected = str(entry["sha256"]).strip().lower()
    if not _SHA256_RE.fullmatch(expected):
        raise EmbcompareError(
            f"file entry {relative}: sha256={entry['sha256']!r} is not 64 hex digits"
        )
    return relative, expected


def _url_or_explain(entry: Mapping, relative: PurePosixPath, target: Path) -> str:
    url = entry.get("url")
    if url:
        return str(url)
    source_url = entry.get("source_url")
    origin = f" (it is re-packed from {source_url})" if source_url else ""
    raise EmbcompareError(
        f"{relative}: no public URL serves this file{origin}; set DATA_MIRROR=/path/to/mirror "
        f"holding {relative}, or copy it to {target}"
    )


def _install(target: Path, expected: str, source: str, write: Callable[[BinaryIO], None]) -> None:
    """Write via `write` to a temp file beside `target`; rename it into place if it verifies."""

    def fill_and_verify(temp: Path) -> None:
        try:
            handle = open(temp, "xb")  # noqa: SIM115 - closed by the with below
        except OSError as error:
            raise _unwritable(target, error) from None
        with handle:
            write(handle)
        actual = sha256_of(temp)
        if actual != expected:
            raise EmbcompareError(
                f"{source}: sha256 of the fetched file is {actual}, expected {expected} for "
                f"{target}; the source changed or the transfer was corrupted, nothing was saved"
            )

    write_atomic(target, fill_and_verify)
    _remember_digest(target, target.stat(), expected)


def _unwritable(target: Path, error: OSError) -> EmbcompareError:
    return EmbcompareError(
        f"{target}: cannot write there ({error.strerror}); pick a writable data dir with "
        "--data-dir or EMBCOMPARE_DATA"
    )


def _copy_from_mirror(source: Path, mirror: str, out: BinaryIO) -> None:
    if not source.is_file():
        raise EmbcompareError(
            f"{source}: not found in the mirror {mirror} (DATA_MIRROR / --mirror); point it at a "
            "directory with the data dir's layout, or unset it to download from the config's URLs"
        )
    with open(source, "rb") as handle:
        shutil.copyfileobj(handle, out, CHUNK_BYTES)


def _network_error(url: str, error: BaseException | str) -> EmbcompareError:
    return EmbcompareError(
        f"{url}: download failed ({error}); no network? set DATA_MIRROR=/path/to/mirror or "
        "copy the files into the data dir"
    )


def _download(url: str, out: BinaryIO, label: str) -> None:
    try:
        response = urllib.request.urlopen(url, timeout=TIMEOUT_S)
    except urllib.error.HTTPError as error:
        raise EmbcompareError(
            f"{url}: HTTP {error.code} {error.reason}; the URL in the config may be stale: set "
            "DATA_MIRROR=/path/to/mirror or copy the file into the data dir"
        ) from None
    except (urllib.error.URLError, http.client.HTTPException, OSError) as error:
        raise _network_error(url, getattr(error, "reason", error)) from None
    except ValueError as error:  # urllib's answer to a malformed URL
        raise EmbcompareError(f"url={url!r}: not a usable URL ({error})") from None
    with response:
        total = int(response.headers.get("Content-Length") or 0) or None
        received = 0
        with tqdm(
            total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=label, leave=False
        ) as bar:
            for chunk in _chunks(response, url):
                out.write(chunk)
                received += len(chunk)
                bar.update(len(chunk))
    if total is not None and received != total:
        raise _network_error(url, f"connection closed after {received} of {total} bytes")


def _chunks(response, url: str) -> Iterator[bytes]:
    # only reads are wrapped, so a local write error (disk full) is not blamed on the network
    while True:
        try:
            chunk = response.read(CHUNK_BYTES)
        except (http.client.HTTPException, OSError) as error:
            raise _network_error(url, error) from None
        if not chunk:
            return
        yield chunk


# --- many files ----------------------------------------------------------------------------


def data_dir_from(cfg_value: str | None = None) -> Path:
    """The data dir: an explicit value, else $EMBCOMPARE_DATA, else ./data; made absolute."""
    chosen = cfg_value or os.environ.get("EMBCOMPARE_DATA") or "data"
    return Path(chosen).expanduser().absolute()


def _fetch_each(
    entries: list[dict], data_dir: Path, mirror: str | None
) -> Iterator[tuple[Path, bool]]:
    """Yield (path, whether it had to be copied or downloaded) per entry."""
    for entry in tqdm(entries, desc="data files", unit="file"):
        was_present = (Path(data_dir) / str(entry["path"])).exists()
        yield ensure_file(entry, data_dir, mirror), not was_present


def fetch_all(
    conf_dir: Path, data_dir: Path, mirror: str | None, groups: Iterable[str] = GROUPS
) -> list[Path]:
    """Ensure every file declared in the given config groups (or `group/name` configs)."""
    entries = collect_entries(conf_dir, groups)
    return [path for path, _ in _fetch_each(entries, data_dir, mirror)]


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="embcompare data",
        description="Copy (from a mirror) or download the data files the configs declare, "
        "checking each file's sha256.",
    )
    parser.add_argument("--data-dir", help="target directory (default: $EMBCOMPARE_DATA or ./data)")
    parser.add_argument(
        "--mirror",
        default=os.environ.get("DATA_MIRROR") or None,
        help="copy from this directory instead of downloading (default: $DATA_MIRROR)",
    )
    parser.add_argument("--conf-dir", type=Path, default=DEFAULT_CONF_DIR, help="config root")
    parser.add_argument(
        "--only",
        action="append",
        metavar="GROUP/NAME",
        help="fetch just this config, e.g. dataset/mr (repeatable; a bare GROUP means all of it)",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    data_dir = data_dir_from(args.data_dir)
    try:
        entries = collect_entries(args.conf_dir, args.only or GROUPS)
        results = list(_fetch_each(entries, data_dir, args.mirror))
    except EmbcompareError as error:
        print(f"embcompare: error: {error}", file=sys.stderr)
        return 2
    transferred = sum(fetched for _, fetched in results)
    print(
        f"fetched {len(results)} files into {data_dir} "
        f"({transferred} copied/downloaded, {len(results) - transferred} already present)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
