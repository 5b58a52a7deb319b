"""The hardware map's pre-flight in shipping: ``publish`` signs the model's requirements into the
release's metadata, and the agent refuses a release its runtime cannot load before downloading it."""

from __future__ import annotations

from ship_helpers import publish

from edgeship.core.artifact import file_sha256
from edgeship.ship.slots import active_model


def _custom(repo, target: str) -> dict:
    return repo.targets()[target].custom["edgeship"]


def test_publish_records_what_the_model_needs(repo, releases):
    rel = publish(repo, releases["v2"], "2.0.0")
    need = _custom(repo, rel["target"])["model_requirements"]
    assert need["format"] == "onnx" and need["opsets"]["ai.onnx"] >= 13
    assert any(op.startswith("Gemm@") or op.startswith("MatMul@") for op in need["ops"])
    assert isinstance(need["weights_bytes"], int) and need["weights_bytes"] > 0


def test_agent_refuses_a_release_its_runtime_version_cannot_load(device, repo, releases, server, monkeypatch):
    import edgeship.targets.hwmap.preflight as preflight

    publish(repo, releases["v2"], "2.0.0")
    monkeypatch.setattr(preflight, "installed_version", lambda package: "1.0")  # an old onnxruntime
    server.requests.clear()
    result = device.run_once()
    assert result.kind == "incompatible", result
    assert "onnxruntime-cpu here cannot load it" in result.detail and "opset" in result.detail
    assert not any(releases["v2"].sha256 in r for r in server.requests), server.requests
    assert file_sha256(active_model(device.config.slot_dir)) == releases["v1"].sha256
    monkeypatch.undo()
    assert device.run_once().kind == "updated"  # the installed onnxruntime loads it
