"""What a staged rollout is asked to do: ``RolloutConfig``, and the stage list as users type it."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import ClassVar

from edgeship.core.config import Config
from edgeship.core.errors import BadInput, UsageError

DEFAULT_STAGES = (1.0, 10.0, 50.0, 100.0)


@dataclasses.dataclass(frozen=True)
class TelemetryGates(Config):
    """Stage gates on what the release does once it serves (device telemetry); None turns a gate off.
    With any gate on, a stage advances only once enough of its devices sent telemetry."""

    kind: ClassVar[str] = "telemetry-gates"
    # the median device's p50 latency on the new release over its p50 on the previous one, minus 1
    max_latency_regression: float | None = None
    max_error_rate: float | None = None  # failed inferences / inferences on the new release
    max_drift: float | None = None  # population stability index of any input or output vs the golden data
    # fall of the mean top-1 confidence against the previous release on the same devices (else the golden data)
    max_confidence_drop: float | None = None
    min_inferences: int = 50  # a device's inferences on a release before the gates read it

    @property
    def on(self) -> bool:
        return any(v is not None for v in (self.max_latency_regression, self.max_error_rate, self.max_drift,
                                           self.max_confidence_drop))

    def validate(self) -> None:
        for name in ("max_latency_regression", "max_error_rate", "max_confidence_drop", "max_drift"):
            v = getattr(self, name)
            if v is not None and v < 0:
                raise BadInput(f"--{name.replace('_', '-')} {v}: give a non-negative number")
        if self.min_inferences < 1:
            raise BadInput("--min-inferences must be at least 1")


@dataclasses.dataclass(frozen=True)
class RolloutConfig(Config):
    kind: ClassVar[str] = "rollout"
    model: str = ""
    channel: str = "stable"
    target: str = ""
    from_target: str | None = None
    stages: tuple[float, ...] = DEFAULT_STAGES
    failure_threshold: float = 0.2  # halt when more than this fraction of the reports are failures
    advance_fraction: float = 0.9  # advance once this fraction of the stage's cohort reported
    min_reports: int = 2  # reports needed before a stage can halt (fewer when the cohort is smaller)
    gates: TelemetryGates = TelemetryGates()
    rollback_on_halt: bool = True  # a halted rollout sends its cohort back to from_target (else holds it)

    def validate(self) -> None:
        if not self.model or not self.target:
            raise BadInput("a rollout needs --model NAME and --target TARGET_PATH")
        if not self.stages or any(not 0 < s <= 100 for s in self.stages) or list(self.stages) != sorted(self.stages):
            raise BadInput(f"stages {list(self.stages)}: give increasing percentages in (0, 100], e.g. 1,10,50,100")
        if self.stages[-1] != 100:
            raise BadInput(f"stages {list(self.stages)}: the last stage must be 100")
        if not 0 <= self.failure_threshold < 1:
            raise BadInput(f"failure threshold {self.failure_threshold}: give a fraction in [0, 1)")
        if not 0 < self.advance_fraction <= 1:
            raise BadInput(f"advance fraction {self.advance_fraction}: give a fraction in (0, 1]")
        if self.min_reports < 1:
            raise BadInput("min reports must be at least 1")


def parse_stages(text: str) -> tuple[float, ...]:
    """``"1,10,50,100"`` → ``(1.0, 10.0, 50.0, 100.0)``; RolloutConfig checks the values."""
    try:
        return tuple(float(s) for s in text.split(",") if s.strip())
    except ValueError:
        raise UsageError(f"--stages {text!r}: give percentages such as 1,10,50,100") from None


@dataclasses.dataclass(frozen=True)
class RolloutPlan:
    """A rollout to start for each release a publish makes (``ship publish --rollout URL``): where,
    with which operator token, and how. Checked on construction, so a bad plan stops the publish
    before anything is published."""

    url: str
    token_file: Path | None = None
    stages: tuple[float, ...] = DEFAULT_STAGES
    failure_threshold: float = 0.2
    min_reports: int = 2
    gates: TelemetryGates = TelemetryGates()
    rollback_on_halt: bool = True
    ca_file: Path | None = None  # the PEM bundle an https URL is verified against

    def __post_init__(self) -> None:
        if not self.url.startswith(("http://", "https://")):
            raise BadInput(f"--rollout {self.url!r}: give the rollout service's http(s) URL")
        self.config_for("model", "stable", "target", None)  # the stages and thresholds are valid

    def config_for(self, model: str, channel: str, target: str, from_target: str | None) -> RolloutConfig:
        return RolloutConfig(model=model, channel=channel, target=target, from_target=from_target,
                             stages=tuple(self.stages), failure_threshold=self.failure_threshold,
                             min_reports=self.min_reports, gates=self.gates, rollback_on_halt=self.rollback_on_halt)
