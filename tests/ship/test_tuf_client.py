"""``edgeship-tuf-client``: the TUF conformance suite's client protocol (init, refresh, download) over
the same updater and fetcher the agent uses, against a real repository on loopback."""

from __future__ import annotations

import json
import subprocess
import sys

from ship_helpers import publish


def _client(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edgeship.ship.tuf_client", *args], capture_output=True,
                          text=True, timeout=60)


def test_init_refresh_download_and_cache(repo, server, releases, tmp_path):
    meta, targets = tmp_path / "meta", tmp_path / "targets"
    root = repo.metadata_dir / "1.root.json"
    assert _client("--metadata-dir", str(meta), "init", str(root)).returncode == 0
    assert server.requests == []  # init makes no request
    url = f"{server.url}/metadata"
    r = _client("--metadata-dir", str(meta), "--metadata-url", url, "refresh")
    assert r.returncode == 0, r.stderr
    for name in ("root.json", "timestamp.json", "snapshot.json", "targets.json"):
        assert (meta / name).is_file()  # non-versioned names, as the protocol requires
    dl = ["--metadata-dir", str(meta), "--metadata-url", url, "--target-name", "models/tiny/1.0.0/model.onnx",
          "--target-base-url", f"{server.url}/targets", "--target-dir", str(targets), "download"]
    r = _client(*dl)
    assert r.returncode == 0, r.stderr
    files = list(targets.iterdir())
    assert len(files) == 1 and files[0].read_bytes() == releases["v1"].model.read_bytes()
    before = len([q for q in server.requests if releases["v1"].sha256 in q])
    assert _client(*dl).returncode == 0  # cached: not downloaded again
    assert len([q for q in server.requests if releases["v1"].sha256 in q]) == before
    # Options in any order before the command word, as the suite passes them.
    r = _client("--metadata-url", url, "--metadata-dir", str(meta), "refresh")
    assert r.returncode == 0


def test_failures_exit_1(repo, server, tmp_path):
    meta = tmp_path / "meta"
    assert _client("--metadata-dir", str(meta), "init", str(repo.metadata_dir / "1.root.json")).returncode == 0
    url = f"{server.url}/metadata"
    missing = _client("--metadata-dir", str(meta), "--metadata-url", url, "--target-name", "nope.bin",
                      "--target-base-url", f"{server.url}/targets", "--target-dir", str(tmp_path / "t"), "download")
    assert missing.returncode == 1 and "not found" in missing.stderr
    # Replace the served timestamp with one signed by nobody: refresh must fail.
    ts = repo.metadata_dir / "timestamp.json"
    data = json.loads(ts.read_text())
    data["signatures"] = []
    ts.write_text(json.dumps(data))
    r = _client("--metadata-dir", str(meta), "--metadata-url", url, "refresh")
    assert r.returncode == 1 and "timestamp" in r.stderr


def test_follows_root_rotation(repo, server, releases, tmp_path):
    meta = tmp_path / "meta"
    _client("--metadata-dir", str(meta), "init", str(repo.metadata_dir / "1.root.json"))
    repo.rotate_key("root")
    repo.rotate_key("snapshot")
    publish(repo, releases["v2"], "2.0.0")
    r = _client("--metadata-dir", str(meta), "--metadata-url", f"{server.url}/metadata", "refresh")
    assert r.returncode == 0, r.stderr
    assert json.loads((meta / "root.json").read_text())["signed"]["version"] == 3
