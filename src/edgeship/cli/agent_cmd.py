"""``edgeship agent``: the device side of over-the-air updates."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgeship.cli.common import add_json_arg, print_json
from edgeship.cli.ship_cmd import command_group

if TYPE_CHECKING:
    from edgeship.ship.outcome import Outcome

EPILOG = """\
examples:
  edgeship agent run --repo http://127.0.0.1:8080 --root root.json --slot-dir /var/lib/model \\
      --device-id cam-0042 --once
  edgeship agent run --repo http://127.0.0.1:8080 --root root.json --slot-dir /var/lib/model \\
      --device-id cam-0042 --rollout http://127.0.0.1:8081 --interval 300
  edgeship agent status --slot-dir /var/lib/model --json

A serving process loads the model the pointer names, and records what it does for the agent to send
(aggregates only: counts, latency and input/output statistics, never inputs):
  python -c "from edgeship.ship.agent import active_model; print(active_model('/var/lib/model'))"
  telemetry = edgeship.ship.telemetry.Telemetry('/var/lib/model'); telemetry.infer(runner, feeds)

exit codes (--once): 0 updated, reverted or already up to date · 1 the update was refused or rolled
back (health check, verification, incompatible, network) · 2 bad input
"""


def register(sub: Any) -> None:
    _, ss = command_group(sub, "agent", "device agent: verified A/B model updates with health check and rollback",
                          "Fetch signed model updates (TUF), stage them in the inactive A/B slot, health-check "
                          "them on this device's runtime, switch atomically, roll back.", EPILOG)
    q = ss.add_parser("run", help="check for an update (once, or every --interval seconds)",
                      epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    q.add_argument("--repo", required=True, metavar="URL", help="base URL serving metadata/ and targets/")
    q.add_argument("--root", required=True, type=Path, help="trusted root.json the device was provisioned with")
    q.add_argument("--slot-dir", required=True, type=Path)
    q.add_argument("--device-id", required=True)
    q.add_argument("--channel", default="stable")
    q.add_argument("--model", default="", help="model name in the channel (default: the channel's only model)")
    q.add_argument("--runtime", action="append", default=[], help="runtime this device runs (default: installed)")
    q.add_argument("--rollout", default="", metavar="URL", help="rollout service deciding which release to run")
    q.add_argument("--rollout-token-file", default="", metavar="FILE",
                   help="the rollout service's device token (made by edgeship ship rollout-token)")
    q.add_argument("--ca-file", default="", metavar="PEM",
                   help="CA bundle https repository and rollout URLs are verified against (default: the system's)")
    q.add_argument("--deadline", type=float, default=300.0, help="seconds one update may take, downloads included")
    q.add_argument("--timeout", type=float, default=10.0, help="seconds without data before a download is cut")
    q.add_argument("--retry-failed", action="store_true", help="retry a release that failed here before")
    mode = q.add_mutually_exclusive_group()
    mode.add_argument("--once", action="store_true", help="one cycle, then exit with its outcome")
    mode.add_argument("--interval", type=float, default=None, metavar="S", help="check every S seconds")
    add_json_arg(q)
    q.set_defaults(func=run_agent)

    q = ss.add_parser("status", help="active and previous slots, last update's outcome")
    q.add_argument("--slot-dir", required=True, type=Path)
    add_json_arg(q)
    q.set_defaults(func=run_status)


def _line(outcome: Outcome) -> str:
    text = f"{outcome.kind}: {outcome.target or '-'}"
    if outcome.detail:
        text += f" — {outcome.detail}"
    return text + f" ({outcome.seconds or 0:.1f} s; active {outcome.active_version or 'none'})"


def run_agent(args: argparse.Namespace) -> int:
    from rich.console import Console

    from edgeship.ship.agent import AgentConfig, run_loop
    from edgeship.ship.verbs import agent_run_once

    cfg = AgentConfig(repo_url=args.repo, root=str(args.root), slot_dir=str(args.slot_dir), device_id=args.device_id,
                      channel=args.channel, model=args.model, runtimes=tuple(args.runtime), rollout_url=args.rollout,
                      rollout_token_file=args.rollout_token_file, ca_file=args.ca_file,
                      deadline_s=args.deadline, socket_timeout_s=args.timeout, retry_failed=args.retry_failed)
    err = Console(stderr=True)
    if args.interval is None:
        with err.status(f"updating {args.slot_dir} from {args.repo}"):
            result = agent_run_once(cfg)
        if args.json:
            print_json(result.to_dict())
        else:
            print(_line(result))
        return 0 if result.ok else 1

    def show(result: Outcome) -> None:
        if args.json:
            print_json(result.to_dict())
        else:
            err.print(_line(result))
        sys.stdout.flush()

    run_loop(cfg, args.interval, on_result=show)
    return 0


def run_status(args: argparse.Namespace) -> int:
    from edgeship.ship.outcome import Outcome
    from edgeship.ship.verbs import device_status

    s = device_status(args.slot_dir)
    if args.json:
        print_json(s)
        return 0
    for key in ("active", "previous"):
        e = s[key]
        print(f"{key:9s}" + (f"{e.get('name')} {e.get('version')} (slot {e['slot']}, sha256 {e['sha256'][:12]})"
                             if e else "none"))
    last = s["last_update"]
    print("last     " + (_line(Outcome.from_dict(last)) if last else "no update yet"))
    return 0
