"""Every artifact a target builds ships: a Core ML ``.mlpackage`` folder (one deterministic archive,
unpacked and verified file by file into the slot), a TensorRT engine with the TensorRT version and
GPU it needs (refused before download where they do not match), a TFLite Micro flatbuffer (health-
checked on the micro interpreter); and both servers speak HTTPS when given a certificate."""

from __future__ import annotations

import datetime as dt
import importlib.resources
import io
import shutil
import tarfile
from pathlib import Path

import numpy as np
import pytest
from ship_helpers import agent_config

from edgeship.core.artifact import Model, file_sha256
from edgeship.core.errors import BadInput
from edgeship.core.golden import save_golden
from edgeship.ship import requirements
from edgeship.ship.agent import Agent, active_model
from edgeship.ship.publish import pack_folder, publish_model
from edgeship.ship.rollout.client import RolloutClient
from edgeship.ship.rollout.service import RolloutServer
from edgeship.ship.serve import serve_repository
from edgeship.ship.slots import SlotDir, unpack_model


@pytest.fixture(scope="module")
def package(tmp_path_factory) -> Path:
    """An ML program, relu of a [1, 4] input, built here: git keeps no empty folder, and a Core ML
    package lists its (empty) weights folder in its manifest."""
    import coremltools as ct
    from coremltools.converters.mil import Builder as mb

    @mb.program(input_specs=[mb.TensorSpec(shape=(1, 4))])
    def relu(x):
        return mb.relu(x=x)

    path = tmp_path_factory.mktemp("coreml") / "tiny.mlpackage"
    ct.convert(relu, convert_to="mlprogram").save(str(path))
    return path


def _golden(path: Path, inputs: dict, outputs: dict) -> Path:
    return save_golden(path, [inputs], [outputs])


def test_a_folder_packs_deterministically_and_unpacks_only_into_itself(package, tmp_path):
    a = pack_folder(package, tmp_path / "a.tar")
    copy = tmp_path / "copy" / package.name
    shutil.copytree(package, copy)
    (copy / "Manifest.json").touch()  # another mtime: the archive does not change
    assert pack_folder(copy, tmp_path / "b.tar").read_bytes() == a.read_bytes()
    slot = tmp_path / "slot"
    slot.mkdir()
    hashes = unpack_model(a, slot, package.name)
    assert file_sha256(slot / package.name) == file_sha256(package)
    assert set(hashes) == {f"{package.name}/{p.relative_to(package)}" for p in package.rglob("*") if p.is_file()}
    evil = tmp_path / "evil.tar"
    with tarfile.open(evil, "w") as tar:
        info = tarfile.TarInfo(f"{package.name}/../../escaped")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    with pytest.raises(BadInput, match="not a plain file or folder"):
        unpack_model(evil, tmp_path / "slot2", package.name)
    (copy / "link").symlink_to("/etc/passwd")
    with pytest.raises(BadInput, match="link"):
        pack_folder(copy, tmp_path / "c.tar")


@pytest.mark.slow
def test_an_mlpackage_is_published_and_staged(package, repo, server, tmp_path):
    golden = _golden(tmp_path / "g.npz", {"x": np.ones((1, 4), np.float32)}, {"y": np.ones((1, 4), np.float32)})
    rel = publish_model(repo, package, golden, "stable", "2.0.0", name="tiny", runtime="coreml", gates=[])
    assert rel["target"] == "models/tiny/2.0.0/tiny.mlpackage.tar"
    meta = repo.targets()[rel["target"]].custom["edgeship"]
    assert (meta["unpack"], meta["model_path"], meta["format"]) == ("tar", "tiny.mlpackage", "mlpackage")
    device = tmp_path / "device"
    # The channel now holds the Core ML release: an ONNX Runtime device refuses it before downloading...
    onnx_only = Agent(agent_config(repo, server.url, tmp_path / "onnx-device")).run_once()
    assert onnx_only.kind == "incompatible" and "coreml" in (onnx_only.detail or ""), onnx_only
    result = Agent(agent_config(repo, server.url, device, runtimes=("coreml",))).run_once()
    # ...a Core ML device takes the package: downloaded, verified, unpacked into the slot; its health
    # check then says what it can on Linux (Core ML predicts on macOS only), and nothing is switched.
    assert result.kind == "health_check_failed" and "macOS" in (result.detail or ""), result
    sd = SlotDir(device)
    staged = sd.manifest("a")
    assert staged["model"] == "tiny.mlpackage" and sd.slot_intact("a")
    assert file_sha256(sd.slot_path("a") / "tiny.mlpackage") == file_sha256(package)
    assert all(name.startswith("tiny.mlpackage/") for name in staged["files"])
    (sd.slot_path("a") / "tiny.mlpackage" / "Manifest.json").write_text("{}")  # a changed file is caught
    assert not sd.slot_intact("a")


def test_a_tensorrt_engine_carries_what_it_needs(repo, server, tmp_path, monkeypatch):
    engine = tmp_path / "model.engine"
    engine.write_bytes(b"not really an engine " * 50)
    golden = _golden(tmp_path / "g.npz", {"x": np.ones((1, 16), np.float32)}, {"y": np.ones((1, 4), np.float32)})
    monkeypatch.setitem(
        requirements.REQUIREMENTS,
        "tensorrt",
        requirements.Requirement("TensorRT", lambda: None, requirements.REQUIREMENTS["tensorrt"].meets),
    )
    with pytest.raises(BadInput, match="--requires tensorrt=VALUE"):
        publish_model(repo, engine, golden, "stable", "2.0.0", name="tiny", runtime="tensorrt-gpu")
    rel = publish_model(
        repo,
        engine,
        golden,
        "stable",
        "2.0.0",
        name="tiny",
        runtime="tensorrt-gpu",
        device_requirements=requirements.parse_requirements(["tensorrt=10.3.0", "gpu=sm_89"]),
    )
    meta = repo.targets()[rel["target"]].custom["edgeship"]
    assert meta["device_requirements"] == {"tensorrt": "10.3.0", "gpu": "sm_89"} and meta["format"] == "engine"

    def device_with(trt: str | None, gpu: str | None) -> object:
        for name, value in (("tensorrt", trt), ("gpu", gpu)):
            req = requirements.REQUIREMENTS[name]
            monkeypatch.setitem(
                requirements.REQUIREMENTS, name, requirements.Requirement(req.what, lambda v=value: v, req.meets)
            )
        server.requests.clear()
        return Agent(
            agent_config(repo, server.url, tmp_path / f"dev-{trt}-{gpu}", runtimes=("tensorrt-gpu",))
        ).run_once()

    for trt, gpu, why in (
        (None, None, "needs TensorRT 10.3.0; this device has none"),
        ("10.4.1", "sm_89", "needs TensorRT 10.3.0; this device has 10.4.1"),
        ("10.3.2", "sm_90", "needs GPU compute capability sm_89; this device has sm_90"),
    ):
        result = device_with(trt, gpu)
        assert result.kind == "incompatible" and result.detail == why, result
        assert not any("model.engine" in r for r in server.requests)  # refused before downloading it
    result = device_with("10.3.2", "sm_89")  # a match: it downloads and stages, then health-checks
    assert result.kind == "health_check_failed", result
    assert any("model.engine" in r for r in server.requests)
    assert SlotDir(tmp_path / "dev-10.3.2-sm_89").slot_intact("a")
    with pytest.raises(BadInput, match="NAME=VALUE"):
        requirements.parse_requirements(["cuda=12"])


def test_a_tflite_micro_flatbuffer_ships_and_is_checked_on_the_micro_interpreter(repo, server, tmp_path):
    from edgeship.targets.base import runner_for

    model = tmp_path / "sine.tflite"
    shutil.copy(Path(str(importlib.resources.files("tflite_micro"))) / "python/tflite_micro/sine_float.tflite", model)
    m = Model.open(model)
    feeds = {m.io.inputs[0].name: np.array([[0.5]], np.float32)}
    with runner_for(m, "tflite-micro") as runner:
        golden = _golden(tmp_path / "g.npz", feeds, runner.infer(feeds))
    publish_model(
        repo, model, golden, "micro", "1.0.0", name="sine", runtime="tflite-micro", gates=["cosine_min>=0.999"]
    )
    agent = Agent(agent_config(repo, server.url, tmp_path / "dev", channel="micro", runtimes=("tflite-micro",)))
    result = agent.run_once()
    assert result.kind == "updated", result
    assert file_sha256(active_model(agent.config.slot_dir)) == file_sha256(model)
    assert SlotDir(agent.config.slot_dir).manifest("a")["runtime"] == "tflite-micro"


def _certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key (PEM)."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "edgeship test")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "server.pem", folder / "server.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_file, key_file


def test_https_for_the_repository_and_the_rollout_service(repo, tmp_path):
    cert, key = _certificate(tmp_path)
    with (
        serve_repository(repo.path, certfile=cert, keyfile=key) as files,
        RolloutServer(tmp_path / "r.db", certfile=cert, keyfile=key) as service,
    ):
        assert files.url.startswith("https://") and service.url.startswith("https://")
        agent = Agent(
            agent_config(
                repo, files.url, tmp_path / "dev", rollout_url=service.url, ca_file=str(cert), first_runs=False
            )
        )
        result = agent.run_once()
        assert result.kind == "updated" and result.report_error is None, result
        assert RolloutClient(service.url, ca_file=cert).status()["devices"][0]["device_id"] == "dev-1"
        # Without the certificate to verify against, nothing is believed: no update, no report.
        stranger = Agent(agent_config(repo, files.url, tmp_path / "dev2"))
        assert stranger.run_once().kind in ("download_failed", "metadata_rejected")
        with pytest.raises(BadInput, match="cannot reach"):
            RolloutClient(service.url).status()
    with pytest.raises(BadInput, match="both --cert"):
        RolloutServer(tmp_path / "r.db", certfile=cert)
