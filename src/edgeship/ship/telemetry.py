"""What the model does on the device, in aggregates: the serving side records every inference into
an :class:`Aggregate` per model version and interval, closes it into a report kept in a bounded
on-disk buffer, and the agent sends the buffer to the rollout service in batches, with retry.

**Only aggregates leave the device.** A report holds, for one release and one interval: the number
of inferences, errors counted by kind, a latency sketch, and per input tensor and per output
statistics — count, mean, standard deviation and a quantile sketch of the values (at most
``SAMPLE_VALUES`` of each tensor per inference; token inputs: the length of each row), of each
classifier output's top-1 confidence and entropy, of any other output's row norm. No input, output
or value of a single inference is sent or kept: a sketch's buckets hold counts of values within 5%
of each other, not values (its extremes travel rounded to their bucket), and a report covers at
least ``MIN_INFERENCES_PER_REPORT`` inferences (a shorter interval is carried into the next one;
what is left when the release changes or the process stops is dropped, not sent).

A serving application records through :class:`Telemetry`::

    telemetry = Telemetry("/var/lib/model")          # the agent's slot directory
    outputs = telemetry.infer(runner, feeds)          # times it, records inputs, outputs, errors

and the agent sends what it finds in ``SLOT_DIR/telemetry/`` at each cycle (:func:`send_pending`).
The same statistics of a release's golden data are its reference profile (:func:`reference_profile`),
against which the service measures drift (:mod:`edgeship.ship.drift`).
"""

from __future__ import annotations

import dataclasses
import json
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edgeship.core.errors import BadInput
from edgeship.ship.sketch import Sketch

if TYPE_CHECKING:
    from edgeship.ship.rollout.client import RolloutClient

LATENCY_ALPHA = 0.01  # latency quantiles within 1%
VALUE_ALPHA = 0.05  # input/output statistics within 5%: coarse buckets, small reports
SAMPLE_VALUES = 4096  # values of one tensor taken into its sketch per inference (evenly strided)
BUFFER = "telemetry"  # SLOT_DIR/telemetry/: closed reports waiting to be sent
MAX_BUFFERED_REPORTS = 2000  # the bound of the on-disk buffer (at one report a minute: 33 hours)...
MAX_BUFFERED_BYTES = 32 << 20  # ...and its size; the oldest reports go first, counted as dropped
SEND_BATCH = 50  # reports per request
MIN_INFERENCES_PER_REPORT = 10  # an interval with fewer is carried into the next one, never sent alone


def _rows(a: np.ndarray) -> np.ndarray:
    return a.reshape(1, -1) if a.ndim < 2 else a.reshape(-1, a.shape[-1])


def input_stats(name: str, value: np.ndarray) -> dict[str, np.ndarray]:
    """What is kept of one input tensor: its values (a strided sample), or for integer (token)
    inputs the length of each row (its non-zero entries)."""
    a = np.asarray(value)
    if a.dtype.kind in "iub":
        return {"length": np.count_nonzero(_rows(a), axis=-1).astype(np.float64)}
    flat = a.ravel()
    step = max(1, flat.size // SAMPLE_VALUES)
    return {"value": flat[::step][:SAMPLE_VALUES].astype(np.float64)}


def output_stats(name: str, value: np.ndarray, task: str = "other") -> dict[str, np.ndarray]:
    """What is kept of one output: a classifier's (``check.metrics.is_classifier``, by ``task``)
    top-1 confidence and entropy per row (softmax first when the row is not already
    probabilities); any other output's L2 norm per row."""
    from edgeship.check.metrics import is_classifier

    a = np.asarray(value, dtype=np.float64)
    if not is_classifier(task, [a]):
        return {"norm": np.linalg.norm(_rows(a), axis=-1)}
    rows = _rows(a)
    probs = rows if (rows.min() >= 0 and np.allclose(rows.sum(axis=-1), 1, atol=1e-3)) else _softmax(rows)
    entropy = -(probs * np.log(np.clip(probs, 1e-12, 1))).sum(axis=-1)
    return {"confidence": probs.max(axis=-1), "entropy": entropy}


def _softmax(rows: np.ndarray) -> np.ndarray:
    z = np.exp(rows - rows.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


@dataclasses.dataclass
class Aggregate:
    """One release's inferences over one interval (or, merged, over many intervals and devices)."""

    target: str = ""
    sha256: str = ""
    start: float = 0.0
    end: float = 0.0
    count: int = 0
    errors: dict[str, int] = dataclasses.field(default_factory=dict)
    nonfinite: int = 0  # outputs with NaN/Inf values
    latency: Sketch = dataclasses.field(default_factory=lambda: Sketch(LATENCY_ALPHA))
    inputs: dict[str, dict[str, Sketch]] = dataclasses.field(default_factory=dict)
    outputs: dict[str, dict[str, Sketch]] = dataclasses.field(default_factory=dict)

    @staticmethod
    def _add(into: dict[str, dict[str, Sketch]], name: str, stats: Mapping[str, np.ndarray]) -> None:
        per = into.setdefault(name, {})
        for stat, values in stats.items():
            per.setdefault(stat, Sketch(VALUE_ALPHA)).add(values)

    def observe(self, feeds: Mapping[str, np.ndarray] | None, outputs: Mapping[str, np.ndarray] | None,
                latency_ms: float | None, task: str = "other") -> None:
        self.count += 1
        if latency_ms is not None:
            self.latency.add(latency_ms)
        for name, value in (feeds or {}).items():
            self._add(self.inputs, name, input_stats(name, value))
        for name, value in (outputs or {}).items():
            arr = np.asarray(value)
            if arr.dtype.kind == "f" and not np.isfinite(arr).all():
                self.nonfinite += 1
            self._add(self.outputs, name, output_stats(name, arr, task))

    def error(self, kind: str) -> None:
        """An inference that failed (``kind``: the exception's type, or what the application calls it)."""
        self.count += 1
        self.errors[kind[:64]] = self.errors.get(kind[:64], 0) + 1

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    def merge(self, other: Aggregate) -> Aggregate:
        self.start = min(self.start, other.start) if self.start else other.start
        self.end = max(self.end, other.end)
        self.count += other.count
        self.nonfinite += other.nonfinite
        for k, n in other.errors.items():
            self.errors[k] = self.errors.get(k, 0) + n
        self.latency.merge(other.latency)
        for mine, theirs in ((self.inputs, other.inputs), (self.outputs, other.outputs)):
            for name, stats in theirs.items():
                per = mine.setdefault(name, {})
                for stat, sketch in stats.items():
                    if stat in per:
                        per[stat].merge(sketch)
                    else:
                        per[stat] = Sketch(sketch.alpha).merge(sketch)
        return self

    def sketches(self) -> dict[str, Sketch]:
        """``{"inputs.x.value": Sketch, "outputs.y.confidence": Sketch, …}`` (what drift compares)."""
        return {f"{side}.{name}.{stat}": sk for side, d in (("inputs", self.inputs), ("outputs", self.outputs))
                for name, stats in d.items() for stat, sk in stats.items()}

    # -- the wire --------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        def fields(d: dict[str, dict[str, Sketch]]) -> dict[str, Any]:
            return {n: {s: sk.to_dict() for s, sk in stats.items()} for n, stats in d.items()}

        return {"target": self.target, "sha256": self.sha256, "start": self.start, "end": self.end,
                "count": self.count, "errors": dict(self.errors), "nonfinite": self.nonfinite,
                "latency_ms": self.latency.to_dict(), "inputs": fields(self.inputs), "outputs": fields(self.outputs)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], max_fields: int = 64) -> Aggregate:
        """An aggregate from its JSON object; ValueError names what is malformed or too large."""
        def fields(d: Any, what: str) -> dict[str, dict[str, Sketch]]:
            if not isinstance(d, Mapping) or len(d) > max_fields:
                raise ValueError(f"{what}: an object of at most {max_fields} tensors")
            out: dict[str, dict[str, Sketch]] = {}
            for name, stats in d.items():
                if len(str(name)) > 128 or not isinstance(stats, Mapping) or len(stats) > 8:
                    raise ValueError(f"{what} {str(name)[:40]!r}: a name of at most 128 characters, "
                                     "at most 8 statistics")
                out[str(name)] = {str(s): Sketch.from_dict(v) for s, v in stats.items()}
            return out

        errors = data.get("errors") or {}
        if not isinstance(errors, Mapping) or len(errors) > 32:
            raise ValueError("errors: an object of at most 32 kinds")
        count = data.get("count", 0)
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise ValueError(f"count: expected a count, got {count!r}")
        return cls(target=str(data.get("target") or ""), sha256=str(data.get("sha256") or ""),
                   start=float(data.get("start") or 0.0), end=float(data.get("end") or 0.0), count=count,
                   errors={str(k)[:64]: int(v) for k, v in errors.items()}, nonfinite=int(data.get("nonfinite") or 0),
                   latency=Sketch.from_dict(data.get("latency_ms") or {"alpha": LATENCY_ALPHA}),
                   inputs=fields(data.get("inputs") or {}, "inputs"),
                   outputs=fields(data.get("outputs") or {}, "outputs"))


def reference_profile(golden: str | Path, task: str = "other") -> dict[str, Any]:
    """The statistics of a release's golden inputs and outputs (no latency): its reference profile."""
    from edgeship.core.golden import load_golden

    inputs, outputs, _, _ = load_golden(Path(golden))
    agg = Aggregate()
    for feeds, outs in zip(inputs, outputs, strict=False):
        agg.observe(feeds, outs, None, task)
    d = agg.to_dict()
    return {"samples": agg.count, "inputs": d["inputs"], "outputs": d["outputs"]}


# -- the on-disk buffer --------------------------------------------------------------------------
class TelemetryBuffer:
    """Closed reports waiting to be sent, one file each in ``SLOT_DIR/telemetry/``, written
    atomically; at most ``max_reports`` files and ``max_bytes`` (the oldest go first, and the
    number dropped travels in the next report)."""

    def __init__(self, slot_dir: str | Path, max_reports: int = MAX_BUFFERED_REPORTS,
                 max_bytes: int = MAX_BUFFERED_BYTES) -> None:
        self.folder = Path(slot_dir) / BUFFER
        self.max_reports = max_reports
        self.max_bytes = max_bytes

    def pending(self) -> list[Path]:
        if not self.folder.is_dir():
            return []
        return sorted(f for f in self.folder.iterdir() if f.suffix == ".json" and not f.name.startswith("."))

    def put(self, report: dict[str, Any]) -> Path:
        from edgeship.ship.slots import write_durable

        self.folder.mkdir(parents=True, exist_ok=True)
        files = self.pending()
        sizes = [f.stat().st_size for f in files]
        data = json.dumps(report, separators=(",", ":")).encode()
        dropped = 0
        while files and (len(files) >= self.max_reports or sum(sizes) + len(data) > self.max_bytes):
            files.pop(0).unlink(missing_ok=True)
            sizes.pop(0)
            dropped += 1
        if dropped:
            report = {**report, "dropped": int(report.get("dropped", 0)) + dropped}
            data = json.dumps(report, separators=(",", ":")).encode()
        path = self.folder / f"{time.time_ns():020d}-{report['report_id'][:8]}.json"
        write_durable(path, data)
        return path

    def send(self, client: RolloutClient, device_id: str = "", batch: int = SEND_BATCH) -> dict[str, int]:
        """Send the buffered reports, oldest first, ``batch`` per request; a report's file is deleted
        only once the service took it (it drops one it already has, so a retry counts nothing
        twice). A report without a device id is sent as ``device_id``'s. Stops at the first failure:
        the rest wait for the next call."""
        sent = refused = 0
        files = self.pending()
        for i in range(0, len(files), batch):
            chunk: list[tuple[Path, dict[str, Any]]] = []
            for f in files[i:i + batch]:
                try:
                    report = json.loads(f.read_bytes())
                    chunk.append((f, {**report, "device_id": report.get("device_id") or device_id}))
                except (OSError, json.JSONDecodeError):
                    f.unlink(missing_ok=True)  # a torn or foreign file: nothing to send
            try:
                if chunk:
                    client.telemetry([r for _, r in chunk])
            except BadInput as exc:
                if not _refused(exc):
                    raise
                # The service refused the batch as malformed: send each alone, so one bad report
                # (dropped) does not hold back the others for ever.
                for f, r in chunk:
                    try:
                        client.telemetry([r])
                    except BadInput as one:
                        if not _refused(one):
                            raise
                        refused += 1
                        sent -= 1
                    f.unlink(missing_ok=True)
            for f, _ in chunk:
                f.unlink(missing_ok=True)
            sent += len(chunk)
        return {"sent": sent, "pending": len(self.pending()), **({"refused": refused} if refused else {})}


def _refused(exc: Exception) -> bool:
    """The service refused the request as malformed or too large (not a passing failure)."""
    return "(HTTP 422)" in str(exc) or "(HTTP 413)" in str(exc)


def send_pending(slot_dir: str | Path, client: RolloutClient, device_id: str = "") -> dict[str, Any]:
    """What the agent does each cycle: send the slot directory's buffered telemetry (best effort:
    a failure leaves the reports for the next cycle and is returned, not raised)."""
    buffer = TelemetryBuffer(slot_dir)
    try:
        return buffer.send(client, device_id)
    except Exception as exc:  # the network or the service: try again next cycle
        return {"sent": 0, "pending": len(buffer.pending()), "error": f"{type(exc).__name__}: {exc}"[:300]}


# -- the serving side ----------------------------------------------------------------------------
class Telemetry:
    """Records a serving process's inferences for the release the slot directory's pointer names,
    closing an interval into the buffer every ``interval_s`` seconds (and at ``flush()``)."""

    def __init__(self, slot_dir: str | Path, interval_s: float = 60.0, device_id: str = "", task: str = "other",
                 clock: Callable[[], float] = time.time, buffer: TelemetryBuffer | None = None) -> None:
        self.slot_dir = Path(slot_dir)
        self.task = task  # "classification" / "embedding" / "other": which outputs are a classifier's
        self.interval_s = interval_s
        self.device_id = device_id
        self.clock = clock
        self.buffer = buffer or TelemetryBuffer(slot_dir)
        self._lock = threading.Lock()
        self._current: Aggregate | None = None

    def _release(self) -> tuple[str, str]:
        from edgeship.ship.slots import SlotDir

        act = SlotDir(self.slot_dir).active() or {}
        return str(act.get("target") or ""), str(act.get("sha256") or "")

    def _aggregate(self, now: float) -> Aggregate:
        """The open interval, closed first when it is over."""
        cur = self._current
        if cur is not None and now - cur.start >= self.interval_s:
            self._close(now)
            cur = self._current
        if cur is None:
            target, sha = self._release()
            cur = self._current = Aggregate(target=target, sha256=sha, start=now, end=now)
        return cur

    def _close(self, now: float, final: bool = False) -> Path | None:
        """Write the open interval to the buffer; one with too few inferences stays open (``final``:
        is dropped)."""
        cur = self._current
        if cur is None or cur.count < MIN_INFERENCES_PER_REPORT:
            if final:
                self._current = None
            return None
        self._current = None
        cur.end = now
        report = {"report_id": uuid.uuid4().hex, "device_id": self.device_id, **cur.to_dict()}
        return self.buffer.put(report)

    def record(self, feeds: Mapping[str, np.ndarray] | None, outputs: Mapping[str, np.ndarray] | None,
               latency_ms: float | None) -> None:
        now = self.clock()
        with self._lock:
            self._aggregate(now).observe(feeds, outputs, latency_ms, self.task)

    def record_error(self, kind: str) -> None:
        now = self.clock()
        with self._lock:
            self._aggregate(now).error(kind)

    def infer(self, runner: Any, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """``runner.infer(feeds)``, timed and recorded; an exception is counted by its type and raised."""
        started = time.perf_counter()
        try:
            outputs = runner.infer(dict(feeds))
        except Exception as exc:
            self.record_error(type(exc).__name__)
            raise
        self.record(feeds, outputs, (time.perf_counter() - started) * 1e3)
        return outputs  # type: ignore[no-any-return]

    def switched(self) -> None:
        """Call after loading a new model: the open interval is closed under the old release."""
        with self._lock:
            self._close(self.clock(), final=True)

    def flush(self) -> Path | None:
        """Close the open interval now (at shutdown)."""
        with self._lock:
            return self._close(self.clock(), final=True)

