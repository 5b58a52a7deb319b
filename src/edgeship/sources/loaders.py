"""Where a model comes from: one spec string → a :class:`TorchSource` (to export) or a :class:`Model`.

Accepted specs, each a registered source kind (first match wins, in ``order``):

- ``zoo:NAME`` — a bundled model (``edgeship.zoo``, registered by ``edgeship.zoo.source``);
- ``path/to/file.py:factory`` — the file is imported by path and ``factory()`` is called. It returns
  ``(module, example_inputs)`` (a tuple of tensors or a dict name → tensor), a dict with keys
  ``module``, ``example_inputs`` and optionally ``input_names``, ``output_names``, ``dynamic_axes``,
  ``task``, ``eval_data``, ``calib_data``, ``gate``, or a ready ``TorchSource``;
- ``model.onnx`` — an existing ONNX file (validated: not ONNX, truncated, checker failures are refused);
- ``program.pt2`` — a ``torch.export.save`` archive (loaded with ``torch.export.load``, which unpickles,
  so it needs ``trust_pickle`` like any checkpoint);
- a Hugging Face model folder (``config.json`` inside) of any task Optimum exports — the task from
  the config's architecture or ``task`` (``--task``), inputs, outputs and dummy inputs from Optimum's
  export config, per-task default data and gates (:mod:`edgeship.sources.huggingface`);
- ``.pt``/``.pth``/``.bin``/``.ckpt``/``.pkl`` or any zip/pickle file — refused (loading runs arbitrary
  code) unless ``trust_pickle``; then it must hold a whole ``nn.Module`` and ``shapes`` give the
  example inputs (``--shape x:1,3,224,224``);
- any other model file edgeship knows the format of (``.tflite``, OpenVINO ``.xml``, ``.pte``, ...)
  — a :class:`Model` to run on its runtime.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import inspect
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edgeship.core.artifact import Model
from edgeship.core.errors import BadInput
from edgeship.core.registry import Registry
from edgeship.sources.huggingface import is_hf_folder, load_hf_folder
from edgeship.sources.torch_source import TorchSource, eager_run

PICKLE_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt", ".pkl", ".pickle", ".tar")
_FACTORY_RE = re.compile(r"^(?P<file>.+\.py):(?P<attr>[A-Za-z_][A-Za-z0-9_]*)$")
KNOWN_KINDS = ("zoo:NAME, FILE.py:FACTORY, an .onnx file, a .pt2 torch.export archive (with --trust-pickle), "
               "or a Hugging Face model folder")


@dataclasses.dataclass(frozen=True)
class SourceOptions:
    trust_pickle: bool = False
    shapes: dict[str, tuple[int, ...]] = dataclasses.field(default_factory=dict)
    # ONNX files must pass onnx.checker to be exported; a file only to be run (a check's candidate)
    # needs to parse, since runtimes run graphs the checker refuses (ORT's fp16 converter's output).
    strict: bool = True
    # the Optimum task of a Hugging Face folder (None: inferred from its config.json)
    task: str | None = None


@dataclasses.dataclass(frozen=True)
class SourceKind:
    """A kind of model source: ``matches(spec)`` says whether it is one, ``load`` builds it."""

    name: str
    description: str
    order: int
    matches: Callable[[str], bool]
    load: Callable[[str, SourceOptions], TorchSource | Model]


# Kinds defined here register on import; the zoo (above this layer) adds ``zoo:`` through its entry point.
SOURCE_KINDS: Registry[SourceKind] = Registry("model source kind", plugins="edgeship.sources")


def source_kind(name: str, description: str, order: int,
                matches: Callable[[str], bool]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a loader for specs that ``matches`` accepts; lower ``order`` is tried first."""

    def deco(fn: Callable[[str, SourceOptions], TorchSource | Model]) -> Callable[..., Any]:
        SOURCE_KINDS.add(name, SourceKind(name, description, order, matches, fn))
        return fn

    return deco


def load_source(spec: str, trust_pickle: bool = False, shapes: dict[str, tuple[int, ...]] | None = None,
                strict: bool = True, task: str | None = None) -> TorchSource | Model:
    """Turn a source spec into a TorchSource (something to export) or a Model (an ONNX file).

    ``shapes`` (input name → dims) gives the example inputs of a pickled whole module, which carries none;
    ``task`` chooses the task of a Hugging Face folder (default: what its config.json says).
    """
    spec = str(spec).strip()
    if not spec:
        raise BadInput(f"empty model source; give {KNOWN_KINDS}")
    opts = SourceOptions(trust_pickle=trust_pickle, shapes=dict(shapes or {}), strict=strict, task=task)
    for _, kind in sorted(SOURCE_KINDS.items(), key=lambda item: item[1].order):
        if kind.matches(spec):
            return kind.load(spec, opts)
    path = Path(spec)
    if not path.exists():
        raise BadInput(f"model source {spec!r} not found; check the path, or give {KNOWN_KINDS}")
    if path.suffix == ".py":
        raise BadInput(f"{spec!r} names no factory; give FILE.py:FUNCTION, the function that returns "
                       "(module, example_inputs)")
    if path.is_dir():
        raise BadInput(f"folder {spec!r} has no config.json, so it is not a Hugging Face model folder; "
                       f"give {KNOWN_KINDS}")
    raise BadInput(f"{spec!r} is not a model source edgeship knows; give {KNOWN_KINDS}")


# -- file.py:factory ------------------------------------------------------------------------------
@source_kind("factory", "a Python file and a factory function: net.py:build", 10,
             lambda s: _FACTORY_RE.match(s) is not None)
def _load_factory(spec: str, opts: SourceOptions) -> TorchSource:
    m = _FACTORY_RE.match(spec)
    assert m is not None  # matches() said so
    path, attr = Path(m["file"]), m["attr"]
    if not path.is_file():
        raise BadInput(f"factory file {str(path)!r} not found; give PATH.py:FUNCTION with an existing file")
    module = _import_by_path(path)
    factory = getattr(module, attr, None)
    if not callable(factory):
        found = [n for n, v in vars(module).items() if inspect.isfunction(v) and v.__module__ == module.__name__]
        raise BadInput(f"{str(path)!r} has no function {attr!r}; functions there: {', '.join(found) or 'none'}")
    try:
        made = factory()
    except Exception as exc:  # the user's code: any failure is theirs to fix, reported in one line
        raise BadInput(f"{spec}: the factory raised {type(exc).__name__}: {_first_line(exc)}; "
                       "fix the factory") from None
    return source_from_factory_result(made, spec)


def _import_by_path(path: Path) -> Any:
    # A unique module name per file, so two factories named net.py do not replace each other.
    name = f"_edgeship_user_{abs(hash(str(path.resolve())))}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise BadInput(f"{str(path)!r} cannot be imported as a Python module; check the file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        sys.modules.pop(name, None)
        raise BadInput(f"importing {str(path)!r} failed with {type(exc).__name__}: {_first_line(exc)}; "
                       "fix the file") from None
    return module


def source_from_factory_result(made: Any, name: str) -> TorchSource:
    """Normalise what a factory returned (tuple, dict or TorchSource) into a TorchSource."""
    import torch

    if isinstance(made, TorchSource):
        return made
    fields: dict[str, Any]
    if isinstance(made, dict):
        unknown = set(made) - {"module", "example_inputs", "input_names", "output_names", "dynamic_axes",
                               "task", "eval_data", "calib_data", "gate", "labels"}
        if unknown:
            raise BadInput(f"{name}: the factory's dict has unknown key(s) {', '.join(sorted(unknown))}; allowed: "
                           "module, example_inputs, input_names, output_names, dynamic_axes, task, eval_data, "
                           "calib_data, gate, labels")
        fields = dict(made)
    elif isinstance(made, tuple | list) and len(made) == 2:
        fields = {"module": made[0], "example_inputs": made[1]}
    else:
        raise BadInput(f"{name}: the factory returned {type(made).__name__}; return (module, example_inputs), "
                       "a dict with module and example_inputs, or a TorchSource")
    module = fields.get("module")
    if not isinstance(module, torch.nn.Module):
        raise BadInput(f"{name}: 'module' is {type(module).__name__}, not a torch.nn.Module; return the network")
    if "example_inputs" not in fields:
        raise BadInput(f"{name}: the factory gave no example_inputs; return (module, (example_tensor, ...))")
    module.eval()
    inputs = _name_inputs(module, fields["example_inputs"], fields.get("input_names"), name)
    output_names = fields.get("output_names") or _default_output_names(module, inputs, name)
    dynamic_axes = _normalise_dynamic_axes(fields.get("dynamic_axes") or {}, inputs, name)
    task = fields.get("task", "other")
    if task not in ("embedding", "classification", "other"):
        raise BadInput(f"{name}: task {task!r}; choose embedding, classification or other")
    return TorchSource(name=name, module=module, example_inputs=inputs, output_names=list(output_names),
                       dynamic_axes=dynamic_axes, task=task, calib_data=fields.get("calib_data"),
                       eval_data=fields.get("eval_data"), gate=tuple(fields.get("gate") or ()),
                       labels=fields.get("labels"))


def forward_parameter_names(module: Any) -> list[str]:
    """Names of the positional parameters of ``module.forward`` (what torch calls the inputs)."""
    try:
        params = inspect.signature(module.forward).parameters.values()
    except (TypeError, ValueError):
        return []
    return [p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]


def _name_inputs(module: Any, example: Any, names: Any, where: str) -> dict[str, Any]:
    import torch

    if isinstance(example, torch.Tensor):
        example = (example,)
    if isinstance(example, dict):
        params = forward_parameter_names(module)
        keys = list(example)
        # Reorder to the forward signature when the keys are its parameters (forward takes them positionally).
        if set(keys) <= set(params):
            keys = [p for p in params if p in example]
        items = [(k, example[k]) for k in keys]
    elif isinstance(example, tuple | list):
        params = forward_parameter_names(module)
        given = list(names) if names else params[:len(example)]
        if len(given) < len(example):
            given = given + [f"input_{i}" for i in range(len(given), len(example))]
        items = list(zip(given, example, strict=False))
    else:
        raise BadInput(f"{where}: example_inputs is {type(example).__name__}; give a tensor, a tuple of tensors "
                       "or a dict name → tensor")
    if names and isinstance(example, dict):
        items = [(n, t) for n, (_, t) in zip(names, items, strict=False)]
    for n, t in items:
        if not isinstance(t, torch.Tensor):
            raise BadInput(f"{where}: example input {n!r} is {type(t).__name__}, not a torch.Tensor; "
                           "give tensors (other arguments can be bound with functools.partial)")
    if len({n for n, _ in items}) != len(items):
        raise BadInput(f"{where}: input names {[n for n, _ in items]} repeat; give unique input_names")
    return dict(items)


def _default_output_names(module: Any, inputs: dict[str, Any], where: str) -> list[str]:
    """One eager run tells how many outputs there are: ``output`` for one, ``output_0..`` for several."""
    import torch

    out = eager_run(module, inputs, where, "fix the example inputs")
    if isinstance(out, torch.Tensor):
        return ["output"]
    if isinstance(out, dict):
        return [str(k) for k in out]
    if isinstance(out, tuple | list) and all(isinstance(o, torch.Tensor) for o in out):
        return ["output"] if len(out) == 1 else [f"output_{i}" for i in range(len(out))]
    raise BadInput(f"{where}: forward returns {type(out).__name__} with non-tensor parts; return a tensor, a tuple "
                   "of tensors or a dict of tensors (wrap the module)")


def _normalise_dynamic_axes(axes: Any, inputs: dict[str, Any], where: str) -> dict[str, dict[int, str]]:
    """``{input: {axis: name}}`` or ``{input: [axis, ...]}`` → ``{input: {axis: name}}`` (checked)."""
    out: dict[str, dict[int, str]] = {}
    if not isinstance(axes, dict):
        raise BadInput(f"{where}: dynamic_axes must map input name → {{axis: name}}")
    for inp, spec in axes.items():
        if inp not in inputs:
            raise BadInput(f"{where}: dynamic_axes names {inp!r}, not an input ({', '.join(inputs)})")
        rank = inputs[inp].dim()
        named = spec if isinstance(spec, dict) else {int(a): ("batch" if int(a) == 0 else f"{inp}_dim{a}")
                                                      for a in spec}
        for axis in named:
            if not 0 <= int(axis) < rank:
                raise BadInput(f"{where}: dynamic axis {axis} of {inp!r} is outside its {rank} dims")
        out[inp] = {int(a): str(n) for a, n in named.items()}
    return out


# -- ONNX -----------------------------------------------------------------------------------------
@source_kind("onnx", "an existing ONNX file", 20, lambda s: s.lower().endswith(".onnx"))
def _load_onnx(spec: str, opts: SourceOptions) -> Model:
    from edgeship.core import onnx_file

    # refuses missing, non-ONNX, truncated (and, when strict, invalid) files with one line each
    onnx_file.load(spec, load_weights=opts.strict, check=opts.strict)
    return Model.open(spec)


def _trusted_file(spec: str, opts: SourceOptions, what: str) -> Path:
    """The path of a file that runs code when loaded: it must exist and the user must trust it."""
    path = Path(spec)
    if not path.is_file():
        raise BadInput(f"model source {spec!r} not found; check the path")
    if not opts.trust_pickle:
        raise BadInput(f"{spec!r} is {what}; it can run arbitrary code when loaded; pass --trust-pickle "
                       "if you trust it, or give file.py:factory")
    return path


# -- torch.export archives ------------------------------------------------------------------------
@source_kind("pt2", "a torch.export archive (.pt2)", 30, lambda s: s.lower().endswith(".pt2"))
def _load_pt2(spec: str, opts: SourceOptions) -> TorchSource:
    # torch.export.load unpickles weights and constants (weights_only=False): same risk as a checkpoint.
    path = _trusted_file(spec, opts, "a torch.export archive, which torch.export.load unpickles")
    import torch

    try:
        program = torch.export.load(str(path))
    except Exception as exc:
        raise BadInput(f"{spec!r} is not a readable torch.export archive ({type(exc).__name__}: "
                       f"{_first_line(exc)}); save it with torch.export.save") from None
    args, kwargs = program.example_inputs or ((), {})
    user_inputs = list(program.graph_signature.user_inputs)
    if not args and not kwargs:
        raise BadInput(f"{spec!r} stores no example inputs; re-save it with torch.export.save from torch>=2.6")
    if kwargs:
        raise BadInput(f"{spec!r} takes keyword inputs; export it with positional inputs only")
    example = dict(zip(user_inputs, args, strict=False))
    placeholders = {n.name: n for n in program.graph.nodes if n.op == "placeholder"}
    dynamic: dict[str, dict[int, str]] = {}
    for name in example:
        val = placeholders[name].meta.get("val") if name in placeholders else None
        shape = getattr(val, "shape", ())
        axes = {i: ("batch" if i == 0 else f"{name}_dim{i}") for i, d in enumerate(shape) if not isinstance(d, int)}
        if axes:
            dynamic[name] = axes
    module = program.module()
    out_names = [str(n) for n in program.graph_signature.user_outputs]
    if len(set(out_names)) != len(out_names) or len(out_names) == 1:
        out_names = ["output"] if len(out_names) == 1 else [f"output_{i}" for i in range(len(out_names))]
    return TorchSource(name=spec, module=module, example_inputs=example, output_names=out_names,
                       dynamic_axes=dynamic, extra={"exported_program": True})


# -- Hugging Face folders -------------------------------------------------------------------------
@source_kind("huggingface", "a Hugging Face model folder (config.json + weights) of any task Optimum exports, "
             "loaded offline", 40, is_hf_folder)
def _load_hf(spec: str, opts: SourceOptions) -> TorchSource:
    return load_hf_folder(spec, task=opts.task)


# -- pickle checkpoints ---------------------------------------------------------------------------
def _is_pickle(spec: str) -> bool:
    p = Path(spec)
    if p.suffix.lower() in PICKLE_SUFFIXES:
        return True
    if not p.is_file():
        return False
    with open(p, "rb") as fh:
        head = fh.read(4)
    # zip (torch.save's format) or a raw pickle stream (protocol 2-5)
    return head.startswith(b"PK\x03\x04") or (head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"))


@source_kind("pickle", "a pickled whole nn.Module (torch.save), only with --trust-pickle", 50, _is_pickle)
def _load_pickle(spec: str, opts: SourceOptions) -> TorchSource:
    path = _trusted_file(spec, opts, "a pickle checkpoint")
    import torch

    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=False)
    except Exception as exc:
        raise BadInput(f"{spec!r} cannot be loaded with torch.load ({type(exc).__name__}: {_first_line(exc)}); "
                       "give file.py:factory") from None
    if not isinstance(obj, torch.nn.Module):
        what = "a state dict" if isinstance(obj, dict) else f"a {type(obj).__name__}"
        raise BadInput(f"{spec!r} holds {what}, not a whole nn.Module; give file.py:factory that builds the network "
                       "and loads these weights")
    obj.eval()
    params = forward_parameter_names(obj)
    if not opts.shapes:
        hint = " ".join(f"--shape {p}:1,..." for p in params) or "--shape NAME:1,..."
        raise BadInput(f"{spec!r} carries no example inputs; give their shapes: {hint}")
    unknown = [n for n in opts.shapes if params and n not in params]
    if unknown:
        raise BadInput(f"--shape names {', '.join(unknown)}, not parameters of forward ({', '.join(params)})")
    gen = torch.Generator().manual_seed(0)
    names = [p for p in params if p in opts.shapes] if params else list(opts.shapes)
    example = {n: torch.randn(*opts.shapes[n], generator=gen) for n in names}
    return source_from_factory_result({"module": obj, "example_inputs": example}, spec)


# -- other model files ------------------------------------------------------------------------------
def _is_model_file(spec: str) -> bool:
    from edgeship.core.artifact import FORMATS

    name = spec.lower()
    return Path(spec).exists() and any(name.endswith(s) for _, info in FORMATS.items() for s in info.suffixes)


@source_kind("model", "a model file of a format a target runs (.tflite, .xml, .pte, ...)", 60, _is_model_file)
def _load_model_file(spec: str, opts: SourceOptions) -> Model:
    return Model.open(spec)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:300]
