"""load_source: every kind of user source, and every way a user source can be wrong."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from edgeship.core.artifact import Model
from edgeship.core.errors import BadInput
from edgeship.sources.loaders import SOURCE_KINDS, load_source
from edgeship.sources.torch_source import TorchSource
from models.factories import factories_file, tiny_hf_folder
from models.tiny import tiny_onnx, torch_factory_file


@pytest.fixture(scope="module")
def factories(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return factories_file(tmp_path_factory.mktemp("factories"))


def test_source_kinds_are_registered() -> None:
    assert {"zoo", "factory", "onnx", "pt2", "huggingface", "pickle"} <= set(SOURCE_KINDS.names())


def test_factory_tuple_names_inputs_after_forward_and_runs(tmp_path: Path) -> None:
    src = load_source(torch_factory_file(tmp_path))
    assert isinstance(src, TorchSource)
    assert list(src.example_inputs) == ["x"]  # Net.forward(self, x)
    assert src.output_names == ["output"]
    out = src.forward_numpy({"x": np.ones((2, 1, 8, 8), np.float32)})
    assert out["output"].shape == (2, 10)


def test_factory_with_two_parameters_and_two_outputs(factories: Path) -> None:
    conv = load_source(f"{factories}:fully_conv")
    assert list(conv.example_inputs) == ["image", "scale"]
    two = load_source(f"{factories}:two_outputs")
    assert two.output_names == ["output_0", "output_1"]


def test_factory_dict_gives_names_task_and_dynamic_axes(factories: Path) -> None:
    src = load_source(f"{factories}:named")
    assert list(src.example_inputs) == ["features"]
    assert src.output_names == ["a", "b"]
    assert src.task == "classification"
    clash = load_source(f"{factories}:clash")
    assert clash.dynamic_axes == {"x": {0: "batch"}}
    assert clash.io.inputs[0].shape == ("batch", 3)


@pytest.mark.parametrize(("attr", "fragment"), [
    ("nothing_here", "has no function 'nothing_here'"),
    ("bad_key", "unknown key(s) outputs"),
    ("not_a_module", "not a torch.nn.Module"),
    ("raises", "the factory raised RuntimeError: weights file missing"),
])
def test_factory_mistakes_are_one_line_bad_input(factories: Path, attr: str, fragment: str) -> None:
    with pytest.raises(BadInput) as info:
        load_source(f"{factories}:{attr}")
    assert fragment in str(info.value)
    assert "\n" not in str(info.value)


def test_missing_factory_file_and_missing_path(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match=r"factory file .* not found"):
        load_source(f"{tmp_path}/nope.py:build")
    with pytest.raises(BadInput, match=r"not found"):
        load_source(str(tmp_path / "nope.onnx"))
    with pytest.raises(BadInput, match=r"not found"):
        load_source(str(tmp_path / "nothing-here"))
    (tmp_path / "net.py").write_text("def build():\n    pass\n")
    with pytest.raises(BadInput, match=r"names no factory; give FILE.py:FUNCTION"):
        load_source(str(tmp_path / "net.py"))


def test_factory_file_that_fails_to_import(tmp_path: Path) -> None:
    bad = tmp_path / "broken.py"
    bad.write_text("import torch\ndef build(:\n")
    with pytest.raises(BadInput, match=r"importing .* failed with SyntaxError"):
        load_source(f"{bad}:build")


def test_unknown_zoo_name_lists_the_known_ones() -> None:
    with pytest.raises(BadInput, match=r"unknown zoo model 'no-such-model'; known:"):
        load_source("zoo:no-such-model")


def test_onnx_source_is_a_validated_model(tmp_path: Path) -> None:
    model = load_source(str(tiny_onnx(tmp_path / "mlp.onnx")))
    assert isinstance(model, Model)
    assert model.io.input_names == ["x"]


def test_not_onnx_truncated_and_checker_failures(tmp_path: Path) -> None:
    text = tmp_path / "notes.onnx"
    text.write_text("these are my notes, not a model\n" * 20)
    with pytest.raises(BadInput, match=r"not"):
        load_source(str(text))
    good = tiny_onnx(tmp_path / "good.onnx").read_bytes()
    cut = tmp_path / "cut.onnx"
    cut.write_bytes(good[: len(good) // 2])
    with pytest.raises(BadInput, match=r"truncated|not an ONNX|not a readable"):
        load_source(str(cut))
    with pytest.raises(BadInput, match=r"fails the ONNX checker"):
        load_source(str(_invalid_onnx(tmp_path / "invalid.onnx")))


def _invalid_onnx(path: Path) -> Path:
    """A graph whose node reads a value nothing defines: parses fine, fails onnx.checker."""
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Relu", ["nowhere"], ["y"])], "bad",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def _pickled_net(tmp_path: Path) -> Path:
    net, _ = _tiny_net(tmp_path)
    path = tmp_path / "net.pt"
    torch.save(net, path)
    return path


def _tiny_net(tmp_path: Path) -> tuple[torch.nn.Module, tuple]:
    src = load_source(torch_factory_file(tmp_path))
    return src.module, tuple(src.example_inputs.values())


def test_pickle_checkpoint_is_refused_without_trust(tmp_path: Path) -> None:
    path = _pickled_net(tmp_path)
    with pytest.raises(BadInput) as info:
        load_source(str(path))
    assert "is a pickle checkpoint; it can run arbitrary code when loaded; pass --trust-pickle" in str(info.value)
    # The suffix does not matter: a pickle under another name is recognised by its bytes.
    renamed = tmp_path / "weights.data"
    renamed.write_bytes(path.read_bytes())
    with pytest.raises(BadInput, match=r"pickle checkpoint"):
        load_source(str(renamed))


def test_trusted_pickle_needs_shapes_then_loads(tmp_path: Path) -> None:
    path = _pickled_net(tmp_path)
    with pytest.raises(BadInput, match=r"--shape x:1"):
        load_source(str(path), trust_pickle=True)
    src = load_source(str(path), trust_pickle=True, shapes={"x": (1, 1, 8, 8)})
    assert isinstance(src, TorchSource)
    assert src.example_inputs["x"].shape == (1, 1, 8, 8)
    assert src.forward_numpy({"x": np.zeros((1, 1, 8, 8), np.float32)})["output"].shape == (1, 10)


def test_trusted_state_dict_is_not_a_module(tmp_path: Path) -> None:
    net, _ = _tiny_net(tmp_path)
    path = tmp_path / "weights.pth"
    torch.save(net.state_dict(), path)
    with pytest.raises(BadInput, match=r"holds a state dict, not a whole nn.Module"):
        load_source(str(path), trust_pickle=True, shapes={"x": (1, 1, 8, 8)})


def test_pt2_source_needs_trust_and_keeps_dynamic_dims(tmp_path: Path) -> None:
    net, _ = _tiny_net(tmp_path)
    program = torch.export.export(net, (torch.randn(2, 1, 8, 8),),
                                  dynamic_shapes=({0: torch.export.Dim("batch")},))
    path = tmp_path / "net.pt2"
    torch.export.save(program, str(path))
    with pytest.raises(BadInput, match=r"torch.export archive, which torch.export.load unpickles"):
        load_source(str(path))
    src = load_source(str(path), trust_pickle=True)
    assert list(src.example_inputs) == ["x"]
    assert src.dynamic_axes == {"x": {0: "batch"}}
    x = np.random.default_rng(0).standard_normal((3, 1, 8, 8)).astype(np.float32)
    with torch.inference_mode():
        want = net(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(src.forward_numpy({"x": x})["output"], want, rtol=1e-5, atol=1e-6)


def test_hf_folder_source_with_tokenizer(tmp_path: Path) -> None:
    folder = tiny_hf_folder(tmp_path / "bert")
    src = load_source(str(folder))
    assert list(src.example_inputs) == ["input_ids", "attention_mask", "token_type_ids"]
    assert src.output_names == ["last_hidden_state"]
    assert src.dynamic_axes["input_ids"] == {0: "batch", 1: "sequence"}
    lengths = {f["input_ids"].shape[1] for f in src.extra["parity_feeds"]}
    assert len(lengths) > 1  # example sentences tokenised alone, at their own lengths
    out = src.forward_numpy(src.extra["parity_feeds"][0])["last_hidden_state"]
    assert out.shape[-1] == 16


def test_hf_folder_without_tokenizer_gets_ids_inside_the_vocabulary(tmp_path: Path) -> None:
    folder = tiny_hf_folder(tmp_path / "bert")
    for name in ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        (folder / name).unlink(missing_ok=True)
    src = load_source(str(folder))
    assert src.extra["tokenizer"] is None
    ids = src.example_inputs["input_ids"]
    assert ids.shape == (1, 16) and int(ids.min()) > 0 and int(ids.max()) < 26
    out = src.forward_numpy({k: v.numpy() for k, v in src.example_inputs.items()})["last_hidden_state"]
    assert out.shape == (1, 16, 16)


def test_folder_without_config_is_refused(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match=r"has no config.json"):
        load_source(str(tmp_path))
