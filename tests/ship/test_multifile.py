"""Releases whose model keeps its weights beside it (ONNX external data, OpenVINO IR .xml + .bin): every
file is a signed target, the device stages them together, and a release that changes only its weights is
a new release."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from ship_helpers import agent_config, golden_for

from edgeship.core.errors import BadInput
from edgeship.ship.agent import Agent, active_model
from edgeship.ship.publish import publish_model
from edgeship.ship.repository import RepoConfig, init_repo
from edgeship.ship.serve import serve_repository
from edgeship.ship.slots import SlotDir
from models.tiny import tiny_onnx


def _external(folder: Path, seed: int) -> tuple[Path, Path]:
    """The tiny MLP saved with its weights in model.onnx.data, and its golden file."""
    folder.mkdir()
    single = tiny_onnx(folder / "single.onnx", seed=seed)
    proto = onnx.load(str(single))
    model = folder / "model.onnx"
    onnx.save(proto, str(model), save_as_external_data=True, all_tensors_to_one_file=True,
              location="model.onnx.data", size_threshold=0)
    golden = golden_for(single, folder / "golden.npz")
    single.unlink()
    return model, golden


def _serve(model: Path) -> np.ndarray:
    import onnxruntime as ort

    sess = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    return sess.run(None, {"x": np.ones((1, 16), np.float32)})[0]


def test_external_data_release_installs_and_weight_only_change_is_a_new_release(tmp_path):
    v1, g1 = _external(tmp_path / "v1", seed=0)
    v2, g2 = _external(tmp_path / "v2", seed=1)
    assert v1.read_bytes() == v2.read_bytes()  # same graph file: only the weights differ
    repo = init_repo(tmp_path / "repo", RepoConfig())
    rel = publish_model(repo, v1, g1, "stable", "1.0.0", name="ext", gates=["cosine_min>=0.999"])
    assert rel["files"] == ["model.onnx.data"]
    with serve_repository(repo.path) as server:
        agent = Agent(agent_config(repo, server.url, tmp_path / "device"))
        assert agent.run_once().kind == "updated"
        model = active_model(tmp_path / "device")
        assert (model.parent / "model.onnx.data").is_file()
        np.testing.assert_allclose(_serve(model), _serve(v1), rtol=1e-6)
        publish_model(repo, v2, g2, "stable", "2.0.0", name="ext", gates=["cosine_min>=0.999"])
        result = agent.run_once()
        assert result.kind == "updated" and result.version == "2.0.0", result
        np.testing.assert_allclose(_serve(active_model(tmp_path / "device")), _serve(v2), rtol=1e-6)
        sd = SlotDir(tmp_path / "device")
        assert sd.pointer()["active"]["sha256"] != sd.pointer()["previous"]["sha256"]
        assert sd.slot_intact(sd.pointer()["previous"]["slot"])


def test_tampered_companion_is_rejected_and_the_old_model_kept(tmp_path):
    v1, g1 = _external(tmp_path / "v1", seed=0)
    v2, g2 = _external(tmp_path / "v2", seed=1)
    repo = init_repo(tmp_path / "repo", RepoConfig())
    publish_model(repo, v1, g1, "stable", "1.0.0", name="ext", gates=["cosine_min>=0.999"])
    with serve_repository(repo.path) as server:
        agent = Agent(agent_config(repo, server.url, tmp_path / "device"))
        assert agent.run_once().kind == "updated"
        publish_model(repo, v2, g2, "stable", "2.0.0", name="ext", gates=["cosine_min>=0.999"])
        served = next((repo.path / "public" / "targets" / "models" / "ext" / "2.0.0").glob("*.model.onnx.data"))
        data = bytearray(served.read_bytes())
        data[-1] ^= 0xFF
        served.write_bytes(bytes(data))
        result = agent.run_once()
        assert result.kind == "rejected" and "signed metadata" in result.detail, result
        np.testing.assert_allclose(_serve(active_model(tmp_path / "device")), _serve(v1), rtol=1e-6)


def test_openvino_ir_release_runs_on_the_device(tmp_path):
    pytest.importorskip("openvino")
    from edgeship.core.artifact import Model
    from edgeship.targets.base import get_target

    src = tiny_onnx(tmp_path / "tiny.onnx", seed=0)
    (tmp_path / "ir").mkdir()
    ir = get_target("openvino").convert(Model.open(src), tmp_path / "ir" / "tiny.xml")
    golden = golden_for(src, tmp_path / "golden.npz")
    repo = init_repo(tmp_path / "repo", RepoConfig())
    rel = publish_model(repo, ir.path, golden, "stable", "1.0.0", name="tiny-ov", runtime="openvino-cpu",
                        gates=["cosine_min>=0.999"])
    assert rel["files"] == ["tiny.bin"]
    with serve_repository(repo.path) as server:
        agent = Agent(agent_config(repo, server.url, tmp_path / "device", runtimes=("openvino-cpu",)))
        result = agent.run_once()
        assert result.kind == "updated", result
        model = active_model(tmp_path / "device")
        assert model.name == "tiny.xml" and (model.parent / "tiny.bin").is_file()


def test_missing_weights_file_is_bad_input(tmp_path):
    (tmp_path / "m.xml").write_text("<net/>")
    repo = init_repo(tmp_path / "repo", RepoConfig())
    _, g1 = _external(tmp_path / "v1", seed=0)
    with pytest.raises(BadInput, match=r"m\.bin"):
        publish_model(repo, tmp_path / "m.xml", g1, "stable", "1.0.0", name="x")


@pytest.mark.parametrize("location", ["../outside.data", "/etc/hostname", ".."])
def test_external_data_outside_the_model_folder_is_refused(tmp_path, location):
    model, golden = _external(tmp_path / "v1", seed=0)
    proto = onnx.load(str(model), load_external_data=False)
    for t in proto.graph.initializer:
        for e in t.external_data:
            if e.key == "location":
                e.value = location
    onnx.save(proto, str(model))
    repo = init_repo(tmp_path / "repo", RepoConfig())
    with pytest.raises(BadInput, match="must be a file beside it"):
        publish_model(repo, model, golden, "stable", "1.0.0", name="x")
