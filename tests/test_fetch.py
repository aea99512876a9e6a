"""Fetching data files: from a mirror, over HTTP (a local server only), and the config entries."""

from __future__ import annotations

import functools
import hashlib
import http.server
import os
import socket
import threading
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from embcompare.data import fetch
from embcompare.errors import EmbcompareError

REPO = Path(__file__).resolve().parents[1]
CONF_DIR = REPO / "conf"
SMALL_REAL_FILES = ("similarity/EN-MC-30.txt", "classification/trec/TREC.test.all")


def _mirror_dir() -> Path:
    # the repo clone has ../shared/data beside it, unless DATA_MIRROR says otherwise
    return Path(os.environ.get("DATA_MIRROR") or REPO.parent / "shared" / "data")


@pytest.fixture
def mirror() -> Path:
    path = _mirror_dir()
    if not path.is_dir():
        pytest.skip(f"no data mirror at {path} (set DATA_MIRROR to the shared data directory)")
    return path


@pytest.fixture
def conf_entries() -> dict[str, dict]:
    return {entry["path"]: entry for entry in fetch.collect_entries(CONF_DIR)}


def _entry(path: str, data: bytes, url: str | None = None, **extra) -> dict:
    return {"path": path, "url": url, "sha256": hashlib.sha256(data).hexdigest(), **extra}


def _files_under(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # the base class names it `format`
        pass


class _ShortHandler(_QuietHandler):
    """Promises 100 bytes and sends 10, like a connection dropped mid-download."""

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "100")
        self.end_headers()
        self.wfile.write(b"0123456789")


@pytest.fixture
def no_proxy(monkeypatch):
    # a proxy set in the environment must not intercept requests to the local test server
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")


def _serve(handler_class, root: Path):
    handler = functools.partial(handler_class, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server, thread


@pytest.fixture
def web(tmp_path, no_proxy):
    """(served directory, base URL) of an HTTP server on 127.0.0.1."""
    root = tmp_path / "www"
    root.mkdir()
    server, thread = _serve(_QuietHandler, root)
    yield root, f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()
    thread.join()


# --- finding entries -------------------------------------------------------------------------


def test_file_entries_walks_plain_and_omegaconf_nesting():
    tree = {
        "name": "x",
        "files": {"a": {"path": "a.txt", "sha256": "1" * 64}, "b": {"path": "only-path"}},
        "more": [{"deep": {"path": "c.txt", "sha256": "2" * 64, "url": None}}],
    }
    for node in (tree, OmegaConf.create(tree)):
        assert [e["path"] for e in fetch.file_entries(node)] == ["a.txt", "c.txt"]


def test_file_entries_leaves_interpolations_unresolved():
    node = OmegaConf.create({"f": {"path": "${missing.key}/a", "sha256": "1" * 64}})
    assert fetch.file_entries(node)[0]["path"] == "${missing.key}/a"


def test_collect_entries_dedupes_paths_and_rejects_conflicting_digests(tmp_path):
    group = tmp_path / "dataset"
    group.mkdir()
    (group / "one.yaml").write_text(f"files: {{a: {{path: x/a, sha256: '{'1' * 64}'}}}}\n")
    (group / "two.yaml").write_text(f"extra: {{path: x/a, sha256: '{'1' * 64}'}}\n")
    assert len(fetch.collect_entries(tmp_path, ["dataset"])) == 1
    (group / "two.yaml").write_text(f"extra: {{path: x/a, sha256: '{'2' * 64}'}}\n")
    with pytest.raises(EmbcompareError, match="two.yaml.*x/a"):
        fetch.collect_entries(tmp_path, ["dataset"])


def test_unknown_config_is_named(tmp_path):
    (tmp_path / "dataset").mkdir()
    with pytest.raises(EmbcompareError, match="nosuch.yaml"):
        fetch.collect_entries(tmp_path, ["dataset/nosuch"])


def test_sha256_of_streams_large_files(tmp_path):
    data = bytes(range(256)) * 10_000  # spans several 1 MiB chunks
    (tmp_path / "f").write_bytes(data)
    assert fetch.sha256_of(tmp_path / "f") == hashlib.sha256(data).hexdigest()


def test_data_dir_precedence(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("EMBCOMPARE_DATA", raising=False)
    assert fetch.data_dir_from(None) == tmp_path / "data"
    monkeypatch.setenv("EMBCOMPARE_DATA", "from-env")
    assert fetch.data_dir_from(None) == tmp_path / "from-env"
    assert fetch.data_dir_from("explicit") == tmp_path / "explicit"
    assert fetch.data_dir_from("explicit").is_absolute()


def test_entry_path_must_stay_inside_data_dir(tmp_path):
    for bad in ("../escape.txt", "/etc/passwd"):
        with pytest.raises(EmbcompareError, match="relative"):
            fetch.ensure_file({"path": bad, "sha256": "1" * 64}, tmp_path, str(tmp_path))


# --- mirror ----------------------------------------------------------------------------------


@pytest.mark.parametrize("relative", SMALL_REAL_FILES)
def test_copy_from_mirror(relative, mirror, conf_entries, tmp_path):
    path = fetch.ensure_file(conf_entries[relative], tmp_path, str(mirror))
    assert path == tmp_path / relative
    assert path.read_bytes() == (mirror / relative).read_bytes()
    assert (tmp_path / (relative + ".sha256")).is_file()


def test_missing_mirror_file_names_mirror_path(tmp_path):
    empty_mirror = tmp_path / "mirror"
    empty_mirror.mkdir()
    with pytest.raises(EmbcompareError, match=str(empty_mirror / "a" / "b.txt")):
        fetch.ensure_file(_entry("a/b.txt", b"x"), tmp_path / "data", str(empty_mirror))
    assert not (tmp_path / "data" / "a" / "b.txt").exists()


# --- HTTP ------------------------------------------------------------------------------------


def test_download(web, tmp_path):
    root, base = web
    data = bytes(range(256)) * 5_000  # > 1 MiB, so several reads
    (root / "f.bin").write_bytes(data)
    data_dir = tmp_path / "data"
    path = fetch.ensure_file(_entry("sub/f.bin", data, f"{base}/f.bin"), data_dir, None)
    assert path.read_bytes() == data
    assert _files_under(data_dir) == ["sub/f.bin", "sub/f.bin.sha256"]


def test_download_with_wrong_digest_saves_nothing(web, tmp_path):
    root, base = web
    (root / "f.bin").write_bytes(b"served bytes")
    entry = _entry("sub/f.bin", b"other bytes", f"{base}/f.bin")
    actual = hashlib.sha256(b"served bytes").hexdigest()
    data_dir = tmp_path / "data"
    with pytest.raises(EmbcompareError) as caught:
        fetch.ensure_file(entry, data_dir, None)
    message = str(caught.value)
    assert "sub/f.bin" in message and entry["sha256"] in message and actual in message
    assert _files_under(data_dir) == []  # neither the final name nor a temp file


def test_http_404_names_url(web, tmp_path):
    _, base = web
    url = f"{base}/missing.bin"
    with pytest.raises(EmbcompareError, match="404") as caught:
        fetch.ensure_file(_entry("m.bin", b"x", url), tmp_path, None)
    assert url in str(caught.value)
    assert _files_under(tmp_path) == []


def test_truncated_download_is_reported_and_discarded(tmp_path, no_proxy):
    server, thread = _serve(_ShortHandler, tmp_path)
    url = f"http://127.0.0.1:{server.server_port}/f"
    try:
        with pytest.raises(EmbcompareError, match="10 of 100 bytes") as caught:
            fetch.ensure_file(_entry("out/f", b"x", url), tmp_path / "data", None)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
    assert "DATA_MIRROR" in str(caught.value)
    assert _files_under(tmp_path / "data") == []


def test_unreachable_host_suggests_mirror(tmp_path, no_proxy):
    with socket.socket() as probe:  # a port that was free a moment ago refuses connections
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/f"
    with pytest.raises(EmbcompareError, match="no network") as caught:
        fetch.ensure_file(_entry("f", b"x", url), tmp_path, None)
    assert url in str(caught.value) and "DATA_MIRROR" in str(caught.value)


def test_null_url_without_mirror_asks_for_mirror(tmp_path):
    source = "https://example.org/original.tar.gz"
    entry = _entry("repack.tsv.gz", b"x", None, source_url=source)
    with pytest.raises(EmbcompareError, match="DATA_MIRROR") as caught:
        fetch.ensure_file(entry, tmp_path, None)
    assert "repack.tsv.gz" in str(caught.value) and source in str(caught.value)


# --- files already present -------------------------------------------------------------------


def test_existing_file_with_wrong_content_is_reported_not_replaced(tmp_path):
    (tmp_path / "f.txt").write_bytes(b"local edit")
    entry = _entry("f.txt", b"original")
    with pytest.raises(EmbcompareError) as caught:
        fetch.ensure_file(entry, tmp_path, None)
    message = str(caught.value)
    assert str(tmp_path / "f.txt") in message and entry["sha256"] in message
    assert hashlib.sha256(b"local edit").hexdigest() in message
    assert (tmp_path / "f.txt").read_bytes() == b"local edit"


def test_sidecar_skips_rehash_until_file_changes(tmp_path, monkeypatch):
    data = b"unchanged content\n"
    target = tmp_path / "f.txt"
    target.write_bytes(data)
    entry = _entry("f.txt", data)
    hashed = []
    real_sha256_of = fetch.sha256_of
    monkeypatch.setattr(fetch, "sha256_of", lambda p: hashed.append(p) or real_sha256_of(p))

    fetch.ensure_file(entry, tmp_path, None)
    fetch.ensure_file(entry, tmp_path, None)
    assert len(hashed) == 1
    assert (tmp_path / "f.txt.sha256").read_text().split()[2] == entry["sha256"]

    stat = target.stat()
    os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    fetch.ensure_file(entry, tmp_path, None)
    assert len(hashed) == 2


def test_sidecar_does_not_hide_changed_content(tmp_path):
    target = tmp_path / "f.txt"
    target.write_bytes(b"good")
    fetch.ensure_file(_entry("f.txt", b"good"), tmp_path, None)
    target.write_bytes(b"evil")  # same size; a new mtime makes it re-hash
    os.utime(target, ns=(0, target.stat().st_mtime_ns + 1_000_000_000))
    with pytest.raises(EmbcompareError, match="sha256"):
        fetch.ensure_file(_entry("f.txt", b"good"), tmp_path, None)


# --- the command line ------------------------------------------------------------------------


def test_main_fetches_one_dataset(mirror, tmp_path, capsys):
    argv = ["--data-dir", str(tmp_path), "--mirror", str(mirror), "--only", "dataset/trec"]
    assert fetch.main(argv) == 0
    for name in ("TREC.train.all", "TREC.test.all"):
        assert (tmp_path / "classification" / "trec" / name).is_file()
    assert "2 copied/downloaded, 0 already present" in capsys.readouterr().out
    assert fetch.main(argv) == 0
    assert "0 copied/downloaded, 2 already present" in capsys.readouterr().out


def test_fetch_all_over_one_group(mirror, tmp_path):
    paths = fetch.fetch_all(CONF_DIR, tmp_path, str(mirror), groups=("similarity",))
    assert len(paths) == 11 and all(p.is_file() for p in paths)


def test_main_reports_a_broken_mirror_in_one_line(tmp_path, capsys):
    argv = ["--data-dir", str(tmp_path / "data"), "--mirror", str(tmp_path / "nowhere")]
    assert fetch.main([*argv, "--only", "dataset/trec"]) == 2
    err_lines = [line for line in capsys.readouterr().err.splitlines() if "embcompare" in line]
    assert len(err_lines) == 1 and err_lines[0].startswith("embcompare: error:")
    assert str(tmp_path / "nowhere") in err_lines[0]


def test_main_reports_an_unknown_config(tmp_path, capsys):
    assert fetch.main(["--data-dir", str(tmp_path), "--only", "dataset/nosuch"]) == 2
    assert capsys.readouterr().err.startswith("embcompare: error:")


# --- the configs themselves --------------------------------------------------------------------


def test_every_config_entry_matches_the_mirror(mirror, conf_entries):
    """Each declared file exists in the mirror with exactly the declared sha256."""
    assert len(conf_entries) >= 30
    for relative, entry in conf_entries.items():
        assert fetch._SHA256_RE.fullmatch(entry["sha256"]), relative
        assert (mirror / relative).is_file(), f"{relative} is not in {mirror}"
        assert fetch.sha256_of(mirror / relative) == entry["sha256"], relative
        url = entry.get("url")
        assert url is None or url.startswith("https://"), relative
        if url is None:
            assert entry.get("source_url"), f"{relative}: url null needs a source_url"


@pytest.mark.parametrize(
    # file.yaml names a user's file on the command line (tests/test_user_data.py)
    "path",
    sorted(p for p in (CONF_DIR / "dataset").glob("*.yaml") if p.stem != "file"),
    ids=lambda p: p.stem,
)
def test_dataset_config_schema(path):
    from embcompare.config import compose

    # Composed, not loaded raw: a dataset may inherit from another through its defaults list.
    composed = compose("config", [f"dataset={path.stem}"]).dataset
    cfg = OmegaConf.to_container(composed, resolve=False)
    required = {"name", "format", "encoding", "lowercase", "strip_html", "labels", "max_length"}
    assert required | {"files", "split"} <= set(cfg), path
    assert cfg["name"] == path.stem
    assert cfg["format"] in {"label_text", "lines_per_class", "tsv"}
    assert set(cfg["split"]) == {"policy", "test_fraction", "dev_fraction", "folds", "fold", "seed"}
    splits = {entry["split"] for entry in cfg["files"].values()}
    assert splits <= {"train", "dev", "test", "all", "none"}
    if cfg["split"]["policy"] == "given":
        assert {"train", "test"} <= splits
    else:
        assert "all" in splits
    if cfg["format"] == "lines_per_class":
        labelled = [e["label"] for e in cfg["files"].values() if e["split"] != "none"]
        assert sorted(labelled) == sorted(cfg["labels"])


def test_read_only_data_dir_gets_no_sidecar(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    (folder / "f.txt").write_bytes(b"content")
    folder.chmod(0o555)  # root can still write here, so the code must honour the mode bits
    try:
        fetch.ensure_file(_entry("ro/f.txt", b"content"), tmp_path, None)
        assert _files_under(folder) == ["f.txt"]
    finally:
        folder.chmod(0o755)


def test_unwritable_target_is_a_user_error(tmp_path):
    (tmp_path / "a").write_text("a file where a folder should be")
    with pytest.raises(EmbcompareError, match="cannot write"):
        fetch.ensure_file(_entry("a/b.txt", b"x"), tmp_path, str(tmp_path))
