"""The device agent: fetch signed model updates through TUF, stage them in the inactive A/B slot,
health-check them in a subprocess, switch the active pointer atomically, roll back by itself.

One update cycle (``Agent.run_once``), under an exclusive lock on the slot directory:

1. refresh TUF metadata (python-tuf ``Updater``, bootstrapped with the trusted root the device was
   given; later runs start from the device's own trusted metadata);
2. decide the target: the rollout server's assignment when one is configured (it can only choose
   among signed targets), else the channel file ``channels/CHANNEL.json``;
3. check compatibility from the signed custom metadata (runtime, format, minimum agent version)
   *before* downloading anything;
4. download the model and its golden file with the resumable fetcher under one deadline; verify
   length and sha256 against the TUF target metadata;
5. stage into the inactive slot (fsync), run the health check in a subprocess;
6. switch the pointer (the old slot becomes ``previous``); run the first inferences through the
   pointer in a separate process; on a crash roll back; report the outcome.

``active_model(slot_dir)`` is what a serving process calls to find the model to load.
"""

from __future__ import annotations

import dataclasses
import errno
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from edgeship.core.config import Config
from edgeship.core.errors import BadInput
from edgeship.ship.outcome import Outcome
from edgeship.ship.slots import SlotDir, active_model, plain_file_name, record_crash

if TYPE_CHECKING:
    from edgeship.ship.rollout.client import RolloutClient

__all__ = ["Agent", "AgentConfig", "active_model", "record_crash"]

# The steps of an update, in order, each announced at its checkpoints (``on_step``). A test may stop
# the agent at one (EDGESHIP_AGENT_PAUSE_AT=step): the process prints "PAUSED step" on stderr and
# sleeps, so a crash test can SIGKILL it exactly there.
STEPS = ("download", "verify", "stage", "fsync", "healthcheck", "switch", "switched", "probation")
# Errors of the device's own storage: the update stops, the active model is untouched, and the
# cycle is retried once the disk takes writes again.
STORAGE_ERRORS = frozenset({errno.ENOSPC, errno.EROFS, errno.EDQUOT, errno.EIO, errno.EFBIG})
MAX_DETAIL = 1000  # characters of a failure's detail sent to the rollout service


@dataclasses.dataclass(frozen=True)
class AgentConfig(Config):
    kind: ClassVar[str] = "ship-agent"
    repo_url: str = ""
    root: str = ""  # trusted root.json the device was provisioned with
    slot_dir: str = ""
    device_id: str = ""
    channel: str = "stable"
    model: str = ""  # model name in the channel; empty: the channel's only model
    runtimes: tuple[str, ...] = ()  # runtimes this device runs (report names); empty: what is installed
    rollout_url: str = ""
    rollout_token_file: str = ""  # the device token of the rollout service (edgeship ship rollout-token)
    ca_file: str = ""  # PEM bundle that https repository and rollout URLs are verified against (else the system's)
    deadline_s: float = 300.0  # one update cycle, all downloads included
    socket_timeout_s: float = 10.0
    healthcheck_timeout_s: float = 120.0
    first_runs: bool = True  # run the first inferences through the pointer after switching
    probation_cycles: int = 3  # cycles during which a crash reported by the server rolls back
    retry_failed: bool = False  # try again a release that failed its health check here

    def validate(self) -> None:
        if self.repo_url and not self.repo_url.startswith(("http://", "https://", "file://")):
            raise BadInput(f"--repo {self.repo_url!r}: give an http(s) URL such as http://127.0.0.1:8080")
        if self.rollout_url and not self.rollout_url.startswith(("http://", "https://")):
            raise BadInput(f"--rollout {self.rollout_url!r}: give an http(s) URL")
        if self.rollout_token_file:
            if not self.rollout_url:
                raise BadInput("--rollout-token-file is for a rollout service; give --rollout URL too")
            from edgeship.ship.rollout.tokens import read_token

            read_token(self.rollout_token_file)  # a missing or empty token file fails now, not every cycle
        if self.deadline_s <= 0 or self.socket_timeout_s <= 0 or self.healthcheck_timeout_s <= 0:
            raise BadInput("deadlines and timeouts must be positive seconds")
        if self.device_id and not all(c.isalnum() or c in "-_.:" for c in self.device_id):
            raise BadInput(f"--device-id {self.device_id!r}: use letters, digits, '-', '_', '.', ':'")


def agent_version() -> str:
    from edgeship import __version__

    return __version__


def _version_tuple(v: str) -> tuple[int, ...]:
    out = []
    for part in str(v).split("."):
        digits = "".join(c for c in part if c.isdigit())
        out.append(int(digits) if digits else 0)
    return tuple(out)


def local_runtimes() -> list[str]:
    """Report names of the runtimes that can run here (``onnxruntime-cpu``, ...)."""
    from edgeship.targets.base import all_targets

    return [t.report_name or t.name for t in all_targets() if t.runs_format and t.availability().runs_here]


class UpdateFailed(Exception):
    """One cycle could not finish; ``transient`` failures (network) are retried next cycle."""

    def __init__(self, outcome: str, detail: str, transient: bool = False) -> None:
        super().__init__(detail)
        self.outcome = outcome
        self.detail = detail
        self.transient = transient


class Agent:
    def __init__(self, config: AgentConfig, on_step: Callable[[str], None] | None = None) -> None:
        if not config.repo_url or not config.slot_dir or not config.device_id:
            raise BadInput("the agent needs --repo URL, --slot-dir DIR and --device-id ID")
        self.config = config
        self.slots = SlotDir(config.slot_dir).ensure()
        self.on_step = on_step  # fault injection and progress (tests, fleet simulation)
        self._runtimes = list(config.runtimes) or None
        self._pool: Any = None  # one HTTP connection pool for all cycles (keep-alive)

    # -- helpers ---------------------------------------------------------------------------------
    def _checkpoint(self, step: str) -> None:
        if self.on_step:
            self.on_step(step)
        if os.environ.get("EDGESHIP_AGENT_PAUSE_AT") == step:
            sys.stderr.write(f"PAUSED {step}\n")
            sys.stderr.flush()
            time.sleep(3600)

    def runtimes(self) -> list[str]:
        if self._runtimes is None:
            self._runtimes = local_runtimes()
        return self._runtimes

    def _updater(self, fetcher: Any) -> Any:
        from edgeship.core.registry import require

        require("tuf", "ship", "python-tuf")
        from edgeship.ship.tuf_client import open_updater

        meta = self.slots.path / "metadata"
        bootstrap: bytes | None = None
        if not (meta / "root.json").exists():
            root = Path(self.config.root)
            if not root.is_file():
                raise BadInput(f"trusted root {str(root)!r} not found; provision the device with the "
                               "repository's public/metadata/1.root.json")
            bootstrap = root.read_bytes()
        base = self.config.repo_url.rstrip("/")
        try:
            return open_updater(meta, f"{base}/metadata/", self.slots.path / "downloads", f"{base}/targets/",
                                fetcher=fetcher, bootstrap=bootstrap)
        except Exception as exc:
            raise BadInput(f"cannot load the trusted root: {type(exc).__name__}: {exc}") from None

    def _download(self, updater: Any, fetcher: Any, info: Any) -> Path:
        """Resumable download of a target, then length and hash verified against TUF metadata."""
        from tuf.api import exceptions

        sha = info.hashes["sha256"]
        folder, _, base = info.path.rpartition("/")
        url = f"{self.config.repo_url.rstrip('/')}/targets/{folder + '/' if folder else ''}{sha}.{base}"
        part = self.slots.path / "downloads" / f"{sha}.part"
        try:
            fetcher.download_resumable(url, part, info.length, on_chunk=lambda n: self._checkpoint("download"))
        except exceptions.DownloadLengthMismatchError as exc:
            part.unlink(missing_ok=True)
            # Transient: the release is not at fault, the path to it is; try again next cycle.
            raise UpdateFailed("rejected", f"{info.path}: {exc}", transient=True) from None
        except (exceptions.DownloadError, OSError) as exc:
            raise UpdateFailed("download_failed", f"{info.path}: {type(exc).__name__}: {exc}", transient=True) from None
        self._checkpoint("verify")
        try:
            with open(part, "rb") as fh:
                info.verify_length_and_hashes(fh)
        except exceptions.LengthOrHashMismatchError as exc:
            part.unlink(missing_ok=True)
            raise UpdateFailed("rejected", f"{info.path}: {exc}; the file does not match its signed metadata",
                               transient=True) from None
        return part

    def _rollout(self) -> RolloutClient:
        from edgeship.ship.rollout.client import connect

        return connect(self.config.rollout_url, self.config.rollout_token_file or None,
                       timeout=self.config.socket_timeout_s, ca_file=self.config.ca_file or None)

    def _report(self, outcome: Outcome) -> Outcome:
        if not self.config.rollout_url:
            return outcome
        try:
            detail = outcome.detail if outcome.detail is None else outcome.detail[:MAX_DETAIL]
            self._rollout().report(dataclasses.replace(outcome, detail=detail))
        except Exception as exc:  # the report is best effort; the outcome is on disk anyway
            return dataclasses.replace(outcome, report_error=f"{type(exc).__name__}: {exc}")
        return outcome

    def _healthcheck(self, args: list[str]) -> tuple[bool, str, dict[str, Any]]:
        cmd = [sys.executable, "-m", "edgeship.ship.healthcheck", *args]
        self._checkpoint("healthcheck")
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=self.config.healthcheck_timeout_s,
                                  env={**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")})
        except subprocess.TimeoutExpired:
            return False, f"health check did not finish in {self.config.healthcheck_timeout_s:g} s", {}
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
        result = json.loads(lines[-1]) if lines else {}
        if proc.returncode < 0:
            return False, f"the model crashed the runtime (signal {-proc.returncode})", result
        if proc.returncode != 0 or not result.get("healthy"):
            why = result.get("why") or (proc.stderr.strip().splitlines() or ["no output"])[-1]
            return False, why, result
        return True, result.get("why", ""), result

    # -- one cycle -------------------------------------------------------------------------------
    def run_once(self) -> Outcome:
        """One update cycle; returns (and stores in state.json) what happened."""
        try:
            lock = self.slots.lock()
            lock.__enter__()
        except OSError as exc:  # the lock file cannot be written: a read-only or full disk
            if exc.errno not in STORAGE_ERRORS:
                raise
            return Outcome("storage_failed", detail=f"{exc.strerror or exc} ({exc.filename or 'disk'})",
                           transient=True, device_id=self.config.device_id, agent_version=agent_version())
        try:
            return self._locked_cycle()
        finally:
            lock.__exit__(None, None, None)

    def _locked_cycle(self) -> Outcome:
        started = time.monotonic()
        try:
            self.slots.remove_stale_temps()
            outcome = self._cycle(started)
        except OSError as exc:
            if exc.errno not in STORAGE_ERRORS:
                raise
            outcome = Outcome("storage_failed", detail=f"{exc.strerror or exc} ({exc.filename or 'disk'})",
                              transient=True)
        act = self.slots.active() or {}
        outcome = dataclasses.replace(
            outcome, seconds=round(time.monotonic() - started, 3), device_id=self.config.device_id,
            agent_version=agent_version(), active_target=act.get("target"), active_version=act.get("version"))
        if outcome.kind != "up_to_date":
            st = self.slots.state()
            st["last_update"] = outcome.to_dict()
            try:
                self.slots.write_state(st)
            except OSError as exc:  # a full or read-only disk: the outcome is still reported
                if exc.errno not in STORAGE_ERRORS:
                    raise
            outcome = self._report(outcome)
        if self.config.rollout_url:
            from edgeship.ship.telemetry import send_pending

            send_pending(self.slots.path, self._rollout(), self.config.device_id)
        return outcome

    def _cycle(self, started: float) -> Outcome:
        from edgeship.ship.fetcher import DeadlineFetcher

        rolled = self._probation_check()
        if rolled:
            return rolled
        fetcher = DeadlineFetcher(self.config.socket_timeout_s, started + self.config.deadline_s,
                                  user_agent=f"edgeship-agent/{agent_version()} {self.config.device_id}",
                                  pool=self._pool, ca_file=self.config.ca_file or None)
        self._pool = fetcher.pool
        try:
            return self._update(fetcher)
        except UpdateFailed as exc:
            return Outcome(exc.outcome, detail=exc.detail, transient=exc.transient)

    def _first_runs(self) -> Outcome | None:
        """The first inferences of a newly active model, in a separate process that finds the model
        through the pointer like a serving process; a crash or a failure rolls back."""
        st = self.slots.state()
        act = self.slots.active()
        if not act or not st.get("first_runs_pending") or st["first_runs_pending"] != act.get("sha256"):
            return None
        self._checkpoint("probation")
        ok, why, _ = self._healthcheck(["--slot-dir", str(self.slots.path), "--timed-runs", "0"])
        st = self.slots.state()
        st["first_runs_pending"] = None
        self.slots.write_state(st)
        return None if ok else self._rollback(act, f"first inferences failed: {why}")

    def _probation_check(self) -> Outcome | None:
        """A model in probation that a serving process reported as crashing is rolled back; first
        inferences interrupted by a crash of the agent are run again."""
        failed_first = self._first_runs()
        if failed_first:
            return failed_first
        act = self.slots.active()
        crashes = self.slots.path / "crashes.log"
        if not act or not act.get("probation"):
            crashes.unlink(missing_ok=True)
            return None
        if crashes.is_file() and crashes.read_text().strip():
            detail = crashes.read_text().strip().splitlines()[-1]
            crashes.unlink()
            return self._rollback(act, f"the serving process reported a crash: {detail}")
        self._checkpoint("probation")
        st = self.slots.state()
        st["probation_left"] = st.get("probation_left", self.config.probation_cycles) - 1
        if st["probation_left"] <= 0:
            self.slots.confirm()
            st.pop("probation_left", None)
        self.slots.write_state(st)
        return None

    def _rollback(self, failed: dict[str, Any], why: str) -> Outcome:
        st = self.slots.state()
        st.setdefault("failed", {})[failed["sha256"]] = {"target": failed.get("target"), "why": why}
        st.pop("probation_left", None)
        self.slots.write_state(st)
        ptr = self.slots.rollback()
        if ptr is None:
            return Outcome("rollback_failed", target=failed.get("target"),
                           detail=f"{why}; no intact previous slot to return to")
        return Outcome("rolled_back", target=failed.get("target"), detail=why)

    def _assignment(self) -> dict[str, Any]:
        """What the rollout service wants this device to run (it can only name signed targets)."""
        act = self.slots.active() or {}
        try:
            return self._rollout().assign(
                self.config.device_id, self.config.model or act.get("name") or "", self.config.channel,
                act.get("target"), agent_version())
        except Exception as exc:
            # Without the rollout service the device keeps what it runs (fail safe).
            raise UpdateFailed("rollout_unreachable", f"{type(exc).__name__}: {exc}", transient=True) from None

    def _channel_target(self, updater: Any, fetcher: Any) -> str:
        """The current release of this device's model on its channel (``channels/CHANNEL.json``)."""
        from tuf.api import exceptions

        model = self.config.model
        channel_path = f"channels/{self.config.channel}.json"
        try:
            cinfo = updater.get_targetinfo(channel_path)
        except exceptions.RepositoryError as exc:
            raise UpdateFailed("metadata_rejected", f"{type(exc).__name__}: {exc}") from None
        except exceptions.DownloadError as exc:
            raise UpdateFailed("download_failed", f"{type(exc).__name__}: {exc}", transient=True) from None
        if cinfo is None:
            raise UpdateFailed("no_release", f"channel {self.config.channel!r} has no release in the repository")
        part = self._download(updater, fetcher, cinfo)
        index = json.loads(part.read_bytes())
        part.unlink(missing_ok=True)
        models = index.get("models", {})
        if not model:
            if len(models) != 1:
                raise UpdateFailed("no_release", f"channel {self.config.channel!r} has models "
                                   f"{', '.join(sorted(models)) or 'none'}; choose one with --model")
            model = next(iter(models))
        if model not in models:
            raise UpdateFailed("no_release", f"channel {self.config.channel!r} has no model {model!r}")
        return str(models[model])

    @staticmethod
    def _companions(updater: Any, target: str, meta: dict[str, Any]) -> dict[str, Any]:
        """Signed target info of each companion file the model's metadata lists (name → info)."""
        out = {}
        for name, path in (meta.get("files") or {}).items():
            if not plain_file_name(name) or name in ("golden.npz", "manifest.json", target.rpartition("/")[2]):
                raise UpdateFailed("rejected", f"{target}: companion file name {name!r} is not allowed")
            ci = updater.get_targetinfo(path)
            if ci is None:
                raise UpdateFailed("rejected", f"{target}: its file {name} ({path}) is not in the signed metadata")
            out[name] = ci
        return out

    def _compatible(self, custom: dict[str, Any]) -> str | None:
        """Why this release cannot run here, or None."""
        meta = (custom or {}).get("edgeship", {})
        if meta.get("kind") != "model":
            return "the target is not an edgeship model release"
        runtime = meta.get("target_runtime")
        if runtime and runtime not in self.runtimes():
            return f"built for runtime {runtime!r}; this device runs {', '.join(self.runtimes()) or 'none'}"
        need = meta.get("min_agent_version")
        if need and _version_tuple(agent_version()) < _version_tuple(need):
            return f"needs agent {need} or newer; this agent is {agent_version()}"
        if meta.get("device_requirements"):  # a TensorRT engine: the TensorRT version and GPU it was built for
            from edgeship.ship.requirements import unmet

            why = unmet(meta["device_requirements"])
            if why:
                return why
        if meta.get("unpack") not in (None, "tar") or (meta.get("unpack") and
                                                       not plain_file_name(str(meta.get("model_path") or ""))):
            return (f"packed as {meta.get('unpack')!r} with model path {meta.get('model_path')!r}, "
                    "which this agent cannot unpack")
        if runtime and meta.get("model_requirements"):  # the release's graph against this runtime's version
            from edgeship.targets.hwmap.preflight import device_problems

            problems = device_problems(meta["model_requirements"], runtime)
            if problems:
                return f"{runtime} here cannot load it: {problems[0]}"
        return None

    def _update(self, fetcher: Any) -> Outcome:
        from tuf.api import exceptions

        assignment: dict[str, Any] | None = None
        target: str | None = None
        act = self.slots.active()
        if self.config.rollout_url:
            assignment = self._assignment()
            target = assignment.get("target")
            if target is None and not assignment.get("follow_channel"):
                return Outcome("up_to_date", rollout=assignment)
            failed_targets = {v.get("target") for v in self.slots.state().get("failed", {}).values()}
            if target and ((act and act.get("target") == target) or
                           (target in failed_targets and not self.config.retry_failed)):
                # Nothing to install: no need to touch the repository this cycle.
                return Outcome("up_to_date", target=target, rollout=assignment)
        updater = self._updater(fetcher)
        try:
            updater.refresh()
        except exceptions.RepositoryError as exc:
            raise UpdateFailed("metadata_rejected", f"{type(exc).__name__}: {exc}") from None
        except exceptions.DownloadError as exc:
            raise UpdateFailed("download_failed", f"metadata: {type(exc).__name__}: {exc}", transient=True) from None
        if target is None:
            target = self._channel_target(updater, fetcher)
        if act and act.get("target") == target:
            return Outcome("up_to_date", target=target, rollout=assignment)
        prev = self.slots.pointer().get("previous")
        try:
            info = updater.get_targetinfo(target)
        except exceptions.RepositoryError as exc:
            raise UpdateFailed("metadata_rejected", f"{type(exc).__name__}: {exc}") from None
        if info is None:
            raise UpdateFailed("rejected", f"target {target!r} is not in the signed metadata")
        meta = (info.custom or {}).get("edgeship", {})
        companions = self._companions(updater, target, meta)
        sha = release_sha(info, companions)
        failed = self.slots.state().get("failed", {})
        if sha in failed and not self.config.retry_failed:
            return Outcome("up_to_date", target=target, skipped="failed here before", rollout=assignment)
        if prev and prev.get("sha256") == sha and self.slots.slot_intact(prev["slot"]):
            # Told to go back to the release in the other slot (a halted rollout): no download needed.
            self.slots.switch(prev["slot"], probation=False)
            return Outcome("reverted", target=target, rollout=assignment)
        why = self._compatible(info.custom)
        if why:
            return Outcome("incompatible", target=target, detail=why, rollout=assignment)
        golden_info = updater.get_targetinfo(meta["golden"]) if meta.get("golden") else None
        if golden_info is None:
            raise UpdateFailed("rejected", f"{target}: its golden file is not in the signed metadata")
        model_file = self._download(updater, fetcher, info)
        golden_file = self._download(updater, fetcher, golden_info)
        companion_files = {name: self._download(updater, fetcher, ci) for name, ci in companions.items()}
        slot = self.slots.inactive_slot()
        self.slots.forget_previous()
        packed = meta.get("unpack") == "tar"  # a folder model (.mlpackage) in one archive
        model_name = str(meta["model_path"]) if packed else target.rpartition("/")[2]
        budget_us = meta.get("latency_budget_us")
        budget_ms = None if budget_us is None else budget_us / 1000
        manifest = {"target": target, "name": meta.get("name"), "version": meta.get("version"), "sha256": sha,
                    "model": model_name, "golden": "golden.npz", "gates": meta.get("gates", []),
                    "latency_budget_ms": budget_ms, "runtime": meta.get("target_runtime"),
                    "staged_at": time.time()}
        if companions:
            manifest["files"] = {model_name: info.hashes["sha256"],
                                 **{n: ci.hashes["sha256"] for n, ci in companions.items()}}
        files = {"golden.npz": golden_file, **companion_files} if packed else \
            {model_name: model_file, "golden.npz": golden_file, **companion_files}
        try:
            self.slots.stage(slot, files, manifest, self._checkpoint, archive=model_file if packed else None)
        except BadInput as exc:  # an archive that does not unpack into its folder alone
            raise UpdateFailed("rejected", f"{target}: {exc}") from None
        folder = self.slots.slot_path(slot)
        hc_args = ["--model", str(folder / model_name), "--golden", str(folder / "golden.npz")]
        from edgeship.ship.healthcheck import target_of_runtime

        runtime_target = target_of_runtime(meta.get("target_runtime"))
        if runtime_target:  # checked on the runtime it is for (a .tflite for TFLite Micro on the micro interpreter)
            hc_args += ["--runtime", runtime_target]
        for g in meta.get("gates", []):
            hc_args += ["--gate", g]
        if budget_ms is not None:
            hc_args += ["--latency-budget-ms", str(budget_ms)]
        healthy, why, result = self._healthcheck(hc_args)
        if not healthy:
            st = self.slots.state()
            st.setdefault("failed", {})[sha] = {"target": target, "why": why}
            self.slots.write_state(st)
            return Outcome("health_check_failed", target=target, detail=why, health=result, rollout=assignment)
        self.slots.switch(slot, before_replace=lambda: self._checkpoint("switch"))
        for f in (model_file, golden_file, *companion_files.values()):
            f.unlink(missing_ok=True)
        st = self.slots.state()
        st["probation_left"] = self.config.probation_cycles
        st["first_runs_pending"] = sha if self.config.first_runs else None
        self.slots.write_state(st)
        self._checkpoint("switched")
        failed_first = self._first_runs()
        if failed_first:
            return dataclasses.replace(failed_first, rollout=assignment)
        return Outcome("updated", target=target, version=meta.get("version"), sha256=sha, slot=slot,
                       health={k: result.get(k) for k in ("why", "latency_ms")}, rollout=assignment)


def release_sha(info: Any, companions: dict[str, Any]) -> str:
    """What identifies a release: its model file's sha256, or for a model with companion files (weights
    beside the graph) a sha256 over all their hashes, so a release that changes only its weights is new."""
    sha = info.hashes["sha256"]
    if not companions:
        return sha
    import hashlib

    parts = [sha] + [f"{name}:{ci.hashes['sha256']}" for name, ci in sorted(companions.items())]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def run_loop(config: AgentConfig, interval_s: float, cycles: int | None = None,
             on_result: Callable[[Outcome], None] | None = None) -> None:
    """Update cycles every ``interval_s`` seconds (``cycles`` of them, or for ever)."""
    agent = Agent(config)
    n = 0
    while cycles is None or n < cycles:
        result = agent.run_once()
        if on_result:
            on_result(result)
        n += 1
        if cycles is not None and n >= cycles:
            break
        time.sleep(interval_s)
