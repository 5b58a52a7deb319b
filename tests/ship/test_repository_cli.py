"""The repository side through the CLI and the Python API: init (keys, modes, thresholds), publish
(a model file, a run directory), refresh, key rotation, info; errors are one line with exit 2."""

from __future__ import annotations

import json
import shutil
import stat
import subprocess
import sys
import time

import pytest

from edgeship.cli.main import main
from edgeship.core.errors import BadInput
from edgeship.ship.publish import chosen_variants
from edgeship.ship.repository import ShipRepository


def _cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_init_creates_private_keys_and_signed_metadata(tmp_path, capsys):
    code, out, _ = _cli(capsys, "ship", "init", str(tmp_path / "r"), "--threshold", "root=2",
                        "--expiry-days", "timestamp=2", "--json")
    assert code == 0
    info = json.loads(out)
    assert info["roles"]["root"]["threshold"] == 2 and len(info["roles"]["root"]["keys"]) == 2
    keys = list((tmp_path / "r" / "keys").glob("*.pem"))
    assert len(keys) == 5
    for k in keys:
        assert stat.S_IMODE(k.stat().st_mode) == 0o600
    assert not list((tmp_path / "r" / "public").rglob("*.pem"))  # nothing secret is served
    from tuf.api.metadata import Metadata

    root = Metadata.from_file(str(tmp_path / "r" / "public" / "metadata" / "1.root.json"))
    root.signed.verify_delegate("root", root.signed_bytes, root.signatures)  # signed by 2 of 2
    assert root.signed.consistent_snapshot


def test_init_refuses_a_non_empty_folder(tmp_path, capsys):
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "x").write_text("x")
    code, _, err = _cli(capsys, "ship", "init", str(tmp_path / "r"))
    assert code == 2 and "not empty" in err and len(err.strip().splitlines()) == 1


def test_bad_threshold_is_a_usage_error(tmp_path, capsys):
    code, _, err = _cli(capsys, "ship", "init", str(tmp_path / "r"), "--threshold", "root=0")
    assert code == 2 and "threshold" in err


def test_publish_file_and_metadata(tmp_path, releases, capsys):
    _cli(capsys, "ship", "init", str(tmp_path / "r"))
    code, out, err = _cli(capsys, "ship", "publish", str(tmp_path / "r"), str(releases["v1"].model), "--golden",
                          str(releases["v1"].golden), "--version", "1.0.0", "--name", "tiny", "--gate",
                          "cosine_min>=0.99", "--latency-budget-ms", "5", "--json")
    assert code == 0, err
    rel = json.loads(out)[0]
    repo = ShipRepository(tmp_path / "r")
    info = repo.targets()[rel["target"]]
    meta = info.custom["edgeship"]
    assert meta["sha256"] == releases["v1"].sha256 == info.hashes["sha256"]
    assert meta["target_runtime"] == "onnxruntime-cpu" and meta["latency_budget_us"] == 5000
    assert meta["io"]["inputs"][0]["name"] == "x" and meta["gates"] == ["cosine_min>=0.99"]
    assert repo.channel("stable")["models"] == {"tiny": rel["target"]}
    code, _, err = _cli(capsys, "ship", "publish", str(tmp_path / "r"), str(releases["v1"].model), "--golden",
                        str(releases["v1"].golden), "--version", "1.0.0", "--name", "tiny")
    assert code == 2 and "already published" in err
    code, _, err = _cli(capsys, "ship", "publish", str(tmp_path / "r"), str(releases["v1"].model), "--version", "2")
    assert code == 2 and "--golden" in err


def _run_dir(tmp_path, releases):
    run = tmp_path / "runs" / "tiny"
    run.mkdir(parents=True)
    shutil.copy(releases["v1"].model, run / "fp32.onnx")
    shutil.copy(releases["v2"].model, run / "slow.onnx")
    shutil.copy(releases["v1"].golden, run / "golden.npz")
    variants = [
        {"id": "fp32@onnxruntime", "target": "onnxruntime-cpu", "precision": "fp32", "path": "fp32.onnx",
         "latency_ms": {"p50": 0.5, "p90": 0.6, "p99": 0.8}, "gate": {"passed": True, "why": "ok"}, "chosen": True},
        {"id": "other", "target": "onnxruntime-cpu", "precision": "fp32", "path": "slow.onnx",
         "latency_ms": {"p50": 0.9, "p90": 1, "p99": 1.2}, "gate": {"passed": True, "why": "ok"}, "chosen": False},
    ]
    (run / "report.json").write_text(json.dumps({"model": "zoo:tiny-mlp", "variants": variants,
                                                 "golden": "golden.npz", "gates": ["cosine_min>=0.999"]}))
    return run


def test_publish_run_dir_ships_the_chosen_variant(tmp_path, releases, capsys):
    run = _run_dir(tmp_path, releases)
    _cli(capsys, "ship", "init", str(tmp_path / "r"))
    code, out, err = _cli(capsys, "ship", "publish", str(tmp_path / "r"), str(run), "--version", "1.0.0", "--json")
    assert code == 0, err
    (rel,) = json.loads(out)
    assert rel["name"] == "tiny-mlp" and rel["target"].endswith("/fp32.onnx")
    assert rel["latency_budget_ms"] == 2.4  # 3 × p99
    meta = ShipRepository(tmp_path / "r").targets()[rel["target"]].custom["edgeship"]
    assert meta["gates"] == ["cosine_min>=0.999"] and meta["golden"].endswith("golden.npz")


def test_chosen_falls_back_to_fastest_passing(tmp_path, releases):
    run = _run_dir(tmp_path, releases)
    report = json.loads((run / "report.json").read_text())
    for v in report["variants"]:
        v["chosen"] = False
    report["variants"][0]["gate"]["passed"] = False
    (run / "report.json").write_text(json.dumps(report))
    _, chosen = chosen_variants(run)
    assert [v["id"] for v in chosen] == ["other"]
    for v in report["variants"]:
        v["gate"]["passed"] = False
    (run / "report.json").write_text(json.dumps(report))
    with pytest.raises(BadInput, match="no variant passed"):
        chosen_variants(run)


def test_refresh_rotate_and_info(tmp_path, capsys):
    _cli(capsys, "ship", "init", str(tmp_path / "r"))
    repo = ShipRepository(tmp_path / "r")
    before = repo.load("timestamp").signed
    time.sleep(1.1)  # expiry dates have one-second resolution
    code, out, _ = _cli(capsys, "ship", "refresh", str(tmp_path / "r"), "--json")
    assert code == 0 and json.loads(out) == {"timestamp": before.version + 1}
    assert repo.load("timestamp").signed.expires > before.expires
    old_key = repo.load("root").signed.roles["targets"].keyids[0]
    code, out, _ = _cli(capsys, "ship", "rotate-key", str(tmp_path / "r"), "targets", "--json")
    rotated = json.loads(out)
    assert code == 0 and rotated["keyid"] != old_key and rotated["root_version"] == 2
    root = repo.load("root").signed
    assert root.roles["targets"].keyids == [rotated["keyid"]]
    targets = repo.load("targets")
    root.verify_delegate("targets", targets.signed_bytes, targets.signatures)  # re-signed with the new key
    assert (tmp_path / "r" / "keys" / "retired").is_dir()
    code, out, _ = _cli(capsys, "ship", "info", str(tmp_path / "r"))
    assert code == 0 and "targets" in out and "threshold 1" in out


def test_add_and_revoke_an_external_key(tmp_path, capsys):
    from securesystemslib.signer import CryptoSigner

    _cli(capsys, "ship", "init", str(tmp_path / "r"))
    signer = CryptoSigner.generate_ed25519()
    pem = tmp_path / "hsm-key.pem"  # stands in for a KMS/HSM key: any securesystemslib URI works
    pem.write_bytes(signer.private_bytes)
    pub = tmp_path / "pub.json"
    pub.write_text(json.dumps({"keyid": signer.public_key.keyid, **signer.public_key.to_dict()}))
    code, _, err = _cli(capsys, "ship", "add-key", str(tmp_path / "r"), "targets", "--public-key", str(pub),
                        "--uri", f"file2:{pem}")
    assert code == 0, err
    repo = ShipRepository(tmp_path / "r")
    repo.refresh(("targets",))
    sigs = repo.load("targets").signatures
    assert signer.public_key.keyid in sigs and len(sigs) == 2  # both keys sign
    code, _, err = _cli(capsys, "ship", "revoke-key", str(tmp_path / "r"), "targets", signer.public_key.keyid[:10])
    assert code == 0, err
    assert signer.public_key.keyid not in repo.load("targets").signatures


def test_serve_command_serves_public_only(tmp_path, capsys):
    import socket
    import urllib.request

    _cli(capsys, "ship", "init", str(tmp_path / "r"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "edgeship", "ship", "serve", str(tmp_path / "r"), "--port",
                             str(port)], stderr=subprocess.PIPE, text=True)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                body = urllib.request.urlopen(f"{url}/metadata/timestamp.json", timeout=5).read()
                break
            except OSError:
                assert time.monotonic() < deadline, "server did not start"
                time.sleep(0.2)
        assert json.loads(body)["signed"]["_type"] == "timestamp"
        for path in ("/keys/signers.json", "/../keys/signers.json", "/metadata/"):
            with pytest.raises(urllib.error.HTTPError) as exc:
                urllib.request.urlopen(url + path, timeout=5)
            assert exc.value.code == 404
    finally:
        proc.terminate()
        proc.wait(timeout=10)
