"""The hardware-map targets (``targets.yaml``): which units a target places nodes on, in what order,
under which rule sets, and the policy's quirks (one segment only, largest partition only)."""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path
from typing import Any

from edgeship.core.errors import BadInput
from edgeship.targets.hwmap.rules import RuleSet, load_rules

TARGETS_FILE = Path(__file__).with_name("targets.yaml")
TARGET_KEYS = {"about", "units", "single_segment", "max_partitions", "link", "runtime", "crosscheck", "deploy"}


@dataclasses.dataclass(frozen=True)
class Link:
    fixed_us: float
    gbps: float
    basis: str

    def cost_us(self, nbytes: int) -> float:
        """The assumed time of one hand-off of ``nbytes`` (fixed part plus transfer)."""
        return self.fixed_us + (nbytes / (self.gbps * 1e3) if self.gbps else 0.0)


@dataclasses.dataclass(frozen=True)
class Unit:
    name: str  # GPU, NPU, CPU, ...
    rules: RuleSet


@dataclasses.dataclass(frozen=True)
class MapTarget:
    name: str
    about: str
    units: tuple[Unit, ...]
    link: Link
    single_segment: bool = False
    max_partitions: dict[str, int] = dataclasses.field(default_factory=dict)
    runtime: str = ""
    crosscheck: str = ""
    deploy: str = ""

    @property
    def accelerator(self) -> Unit:
        """The unit the policy prefers (what "full offload" means)."""
        return self.units[0]

    @property
    def has_fallback(self) -> bool:
        return len(self.units) > 1

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "about": self.about,
                "units": [{"unit": u.name, "rules": u.rules.label, "title": u.rules.title} for u in self.units],
                "single_segment": self.single_segment, "max_partitions": dict(self.max_partitions),
                "link": dataclasses.asdict(self.link), "runtime": self.runtime, "crosscheck": self.crosscheck,
                "deploy": self.deploy}


@functools.cache
def _data() -> dict[str, Any]:
    import yaml

    return yaml.safe_load(TARGETS_FILE.read_text())


def target_names() -> list[str]:
    return list(_data()["targets"])


@functools.cache
def map_target(name: str) -> MapTarget:
    """The map target ``name`` (an unknown name is a BadInput listing the known ones)."""
    data = _data()
    spec = data["targets"].get(name)
    if spec is None:
        raise BadInput(f"no hardware-map target {name!r}; known: {', '.join(target_names())} "
                       "(edgeship map --list-targets)")
    unknown = set(spec) - TARGET_KEYS
    if unknown:
        raise BadInput(f"targets.yaml: {name}: unknown key(s) {', '.join(sorted(unknown))}")
    units = tuple(Unit(u["unit"], load_rules(u["rules"])) for u in spec["units"])
    names = [u.name for u in units]
    for unit in spec.get("max_partitions") or {}:
        if unit not in names:
            raise BadInput(f"targets.yaml: {name}: max_partitions names unit {unit!r}, not one of {names}")
    link = data["links"][spec.get("link", "none")]
    return MapTarget(name, spec.get("about", ""), units, Link(float(link["fixed_us"]), float(link["gbps"]),
                     link["basis"]), bool(spec.get("single_segment")), dict(spec.get("max_partitions") or {}),
                     spec.get("runtime", ""), spec.get("crosscheck", ""), spec.get("deploy", ""))


def device_target(runtime: str) -> tuple[MapTarget, str] | None:
    """The map target that judges releases for a device runtime (a report name such as
    ``onnxruntime-cpu``) and the package whose version is the runtime's; None when none does."""
    spec = (_data().get("devices") or {}).get(runtime)
    return (map_target(spec["target"]), spec["package"]) if spec else None


def all_map_targets() -> list[MapTarget]:
    return [map_target(n) for n in target_names()]
