"""``edgeship ship``: the signed update repository (TUF) and the rollout service."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from edgeship.cli.common import add_json_arg, print_json

EPILOG = """\
examples:
  edgeship ship init repo                                   # keys (mode 600) + signed metadata
  edgeship ship publish repo runs/digits --channel stable --version 1.0.0
  edgeship ship publish repo model.onnx --golden golden.npz --channel beta --version 1.1.0
  edgeship ship serve repo --port 8080                      # static HTTP on 127.0.0.1
  edgeship ship refresh repo                                # re-sign timestamp.json (cron it daily)
  edgeship ship rotate-key repo targets
  edgeship ship rollout-token admin.token                   # operator token (mode 600); same for devices
  edgeship ship rollout-server --db rollouts.db --port 8081 \\
      --admin-token-file admin.token --device-token-file device.token
  edgeship ship rollout-server --db postgresql://edgeship@127.0.0.1:5432/fleet --host 0.0.0.0 \\
      --cert server.pem --key server.key --admin-token-file admin.token --device-token-file device.token
  edgeship ship rollout start --server http://127.0.0.1:8081 --token-file admin.token --model digits-cnn \\
      --target models/digits-cnn/1.1.0/model.onnx --from models/digits-cnn/1.0.0/model.onnx
  edgeship ship rollout start --server http://127.0.0.1:8081 --token-file admin.token --model digits-cnn \\
      --target models/digits-cnn/1.2.0/model.onnx --from models/digits-cnn/1.1.0/model.onnx --repo repo \\
      --max-latency-regression 0.2 --max-error-rate 0.01 --max-drift 0.25 --max-confidence-drop 0.2
  edgeship ship status --server http://127.0.0.1:8081 --token-file admin.token
  (the service's page: http://127.0.0.1:8081/dashboard; Prometheus: /metrics, both with the admin token)
"""


def add_telemetry_gates(q: Any) -> None:
    """The telemetry gates of a rollout's stages (``TelemetryGates``) and what a halt does."""
    g = q.add_argument_group("telemetry gates (halt a stage on what the release does once it serves)")
    g.add_argument("--max-latency-regression", type=float, metavar="FRACTION",
                   help="p50 latency over the previous release on the same devices, e.g. 0.2 for +20%%")
    g.add_argument("--max-error-rate", type=float, metavar="FRACTION", help="failed inferences / inferences")
    g.add_argument("--max-drift", type=float, metavar="PSI",
                   help="population stability index of any input or output against the golden data (0.25)")
    g.add_argument("--max-confidence-drop", type=float, metavar="FRACTION",
                   help="fall of the mean top-1 confidence against the previous release")
    g.add_argument("--min-inferences", type=int, default=50, help="a device's inferences before the gates read it")
    g.add_argument("--hold-on-halt", action="store_true",
                   help="a halted rollout keeps its cohort on the new release (default: sends it back)")


def telemetry_gates(args: argparse.Namespace) -> Any:
    from edgeship.ship.rollout.config import TelemetryGates

    return TelemetryGates(max_latency_regression=args.max_latency_regression, max_error_rate=args.max_error_rate,
                          max_drift=args.max_drift, max_confidence_drop=args.max_confidence_drop,
                          min_inferences=args.min_inferences)


def command_group(sub: Any, name: str, help: str, description: str, epilog: str) -> tuple[Any, Any]:
    """A command with subcommands (``edgeship ship …``, ``edgeship agent …``); without one it prints
    its help and exits 2."""
    p = sub.add_parser(name, help=help, description=description, epilog=epilog,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])
    return p, p.add_subparsers(dest=f"{name}_command", metavar="SUBCOMMAND")


def register(sub: Any) -> None:
    _, ss = command_group(sub, "ship", "signed over-the-air updates: TUF repository, publishing, rollouts",
                          "Publish models to a signed TUF update repository, serve it, and stage rollouts to a "
                          "fleet of devices running `edgeship agent`.", EPILOG)

    q = ss.add_parser("init", help="create a repository: keys and signed version-1 metadata")
    q.add_argument("repo", type=Path)
    q.add_argument("--threshold", action="append", default=[], metavar="ROLE=N",
                   help="signatures a role needs, e.g. --threshold root=2 (that many keys are created)")
    q.add_argument("--keys", action="append", default=[], metavar="ROLE=N", help="keys to create for a role")
    q.add_argument("--expiry-days", action="append", default=[], metavar="ROLE=DAYS",
                   help="validity of a role's metadata, e.g. --expiry-days timestamp=1")
    add_json_arg(q)
    q.set_defaults(func=run_init)

    q = ss.add_parser("publish", help="publish a model file (with --golden) or the chosen variants of a run dir")
    q.add_argument("repo", type=Path)
    q.add_argument("source", type=Path, help="MODEL file or RUN_DIR written by edgeship optimize")
    q.add_argument("--channel", default="stable")
    q.add_argument("--version", required=True)
    q.add_argument("--golden", type=Path, help="golden .npz for a model file (a run dir has its own)")
    q.add_argument("--name", help="model name in the repository (default: from the file or run)")
    q.add_argument("--runtime", default="onnxruntime-cpu", help="target runtime the file is for")
    q.add_argument("--precision", default="fp32")
    q.add_argument("--gate", action="append", default=[], help="health-check gate (repeatable)")
    q.add_argument("--latency-budget-ms", type=float, default=None)
    q.add_argument("--min-agent-version", default=None)
    q.add_argument("--requires", action="append", default=[], metavar="NAME=VALUE",
                   help="what the device needs, e.g. tensorrt=10.3 or gpu=sm_89 (a TensorRT engine: read here "
                        "when not given)")
    q.add_argument("--rollout", metavar="URL", help="also start a staged rollout on this rollout service")
    q.add_argument("--token-file", type=Path, metavar="FILE", help="the rollout service's admin token")
    q.add_argument("--stages", default="1,10,50,100", help="rollout stages in percent")
    q.add_argument("--failure-threshold", type=float, default=0.2)
    q.add_argument("--ca-file", type=Path, metavar="PEM", help="CA bundle an https rollout URL is verified against")
    add_telemetry_gates(q)
    add_json_arg(q)
    q.set_defaults(func=run_publish)

    q = ss.add_parser("refresh", help="re-sign metadata with fresh expiry dates (timestamp by default)")
    q.add_argument("repo", type=Path)
    q.add_argument("--role", action="append", choices=["timestamp", "snapshot", "targets"], default=[])
    add_json_arg(q)
    q.set_defaults(func=run_refresh)

    q = ss.add_parser("rotate-key", help="replace a role's key; devices follow the signed root chain")
    q.add_argument("repo", type=Path)
    q.add_argument("role", choices=["root", "targets", "snapshot", "timestamp"])
    add_json_arg(q)
    q.set_defaults(func=run_rotate)

    q = ss.add_parser("add-key", help="let an external key (KMS, HSM, file) sign a role")
    q.add_argument("repo", type=Path)
    q.add_argument("role", choices=["root", "targets", "snapshot", "timestamp"])
    q.add_argument("--public-key", type=Path, required=True, help="JSON file: securesystemslib public key dict")
    q.add_argument("--uri", required=True, help="private key URI: file2:PATH, awskms:..., gcpkms:..., hsm:...")
    q.set_defaults(func=run_add_key)

    q = ss.add_parser("revoke-key", help="stop trusting a key for a role")
    q.add_argument("repo", type=Path)
    q.add_argument("role", choices=["root", "targets", "snapshot", "timestamp"])
    q.add_argument("keyid", help="key id (a unique prefix is enough)")
    q.set_defaults(func=run_revoke_key)

    q = ss.add_parser("info", help="roles, versions, expiry dates, channels")
    q.add_argument("repo", type=Path)
    add_json_arg(q)
    q.set_defaults(func=run_info)

    q = ss.add_parser("serve", help="serve REPO/public over HTTP or HTTPS (range requests; no listings)")
    q.add_argument("repo", type=Path)
    q.add_argument("--port", type=int, default=8080)
    q.add_argument("--host", default="127.0.0.1")
    q.add_argument("--cert", type=Path, metavar="PEM", help="serve HTTPS with this certificate (and --key)")
    q.add_argument("--key", type=Path, metavar="PEM", help="the certificate's private key")
    q.set_defaults(func=run_serve)

    q = ss.add_parser("rollout-token", help="write a new random access token for the rollout service (mode 600)")
    q.add_argument("file", type=Path)
    q.set_defaults(func=run_rollout_token)

    q = ss.add_parser("rollout-server", help="run the rollout service (FastAPI; SQLite or PostgreSQL)",
                      description="Operators need the admin token (rollouts, status, /dashboard, /metrics), devices "
                                  "the device token (assignments, reports, telemetry). Without tokens the service is "
                                  "open, which is allowed on 127.0.0.1 only unless --insecure-no-auth.")
    q.add_argument("--db", default="rollouts.db",
                   help="a SQLite file (default rollouts.db) or postgresql://user@host:port/db")
    q.add_argument("--port", type=int, default=8081)
    q.add_argument("--host", default="127.0.0.1")
    q.add_argument("--admin-token-file", type=Path, metavar="FILE", help="token operators must present")
    q.add_argument("--device-token-file", type=Path, metavar="FILE", help="token devices must present")
    q.add_argument("--insecure-no-auth", action="store_true",
                   help="serve without tokens on a non-loopback address (a network you trust)")
    q.add_argument("--cert", type=Path, metavar="PEM", help="serve HTTPS with this certificate (and --key)")
    q.add_argument("--key", type=Path, metavar="PEM", help="the certificate's private key")
    q.add_argument("--max-body-bytes", type=int, default=1 << 20, help="largest request body accepted")
    q.add_argument("--max-devices-per-token", type=int, default=100_000,
                   help="distinct devices one device token may speak for")
    q.add_argument("--reports-per-minute", type=int, default=60, help="outcome reports per device per minute")
    q.set_defaults(func=run_rollout_server)

    q = ss.add_parser("rollout", help="start, advance, halt or resume a staged rollout")
    q.add_argument("action", choices=["start", "advance", "halt", "resume"])
    q.add_argument("id", nargs="?", type=int, help="rollout id (advance, halt, resume)")
    q.add_argument("--server", required=True, metavar="URL")
    q.add_argument("--token-file", type=Path, metavar="FILE", help="the service's admin token")
    q.add_argument("--model")
    q.add_argument("--channel", default="stable")
    q.add_argument("--target", help="target path of the new release")
    q.add_argument("--from", dest="from_target", help="target path devices stay on / return to")
    q.add_argument("--stages", default="1,10,50,100")
    q.add_argument("--failure-threshold", type=float, default=0.2)
    q.add_argument("--min-reports", type=int, default=2)
    q.add_argument("--repo", type=Path, help="the repository: gives the service the release's reference profile "
                                             "(for --max-drift)")
    q.add_argument("--ca-file", type=Path, metavar="PEM", help="CA bundle an https URL is verified against")
    add_telemetry_gates(q)
    add_json_arg(q)
    q.set_defaults(func=run_rollout)

    q = ss.add_parser("status", help="the fleet as the rollout service sees it")
    q.add_argument("--server", required=True, metavar="URL")
    q.add_argument("--token-file", type=Path, metavar="FILE", help="the service's admin token")
    q.add_argument("--ca-file", type=Path, metavar="PEM", help="CA bundle an https URL is verified against")
    add_json_arg(q)
    q.set_defaults(func=run_status)


def _say(args: argparse.Namespace, obj: Any, text: str) -> None:
    if getattr(args, "json", False):
        print_json(obj)
    else:
        print(text)


def run_init(args: argparse.Namespace) -> int:
    from edgeship.ship.keys import parse_role_values
    from edgeship.ship.verbs import init_repository

    repo = init_repository(args.repo, thresholds=parse_role_values(args.threshold, "--threshold", int),
                           keys_per_role=parse_role_values(args.keys, "--keys", int),
                           expiry_days=parse_role_values(args.expiry_days, "--expiry-days", float))
    _say(args, repo.summary(), f"created {args.repo}: keys in {args.repo}/keys (mode 600), serve {args.repo}/public; "
                               f"provision devices with {args.repo}/public/metadata/1.root.json")
    return 0


def run_publish(args: argparse.Namespace) -> int:
    from edgeship.ship.requirements import parse_requirements
    from edgeship.ship.rollout.config import RolloutPlan, parse_stages
    from edgeship.ship.verbs import publish_release

    plan = RolloutPlan(args.rollout, args.token_file, parse_stages(args.stages), args.failure_threshold,
                       gates=telemetry_gates(args), rollback_on_halt=not args.hold_on_halt, ca_file=args.ca_file) \
        if args.rollout else None
    releases = publish_release(args.repo, args.source, args.channel, args.version, golden=args.golden,
                               name=args.name, runtime=args.runtime, precision=args.precision,
                               gates=args.gate or None, latency_budget_ms=args.latency_budget_ms,
                               min_agent_version=args.min_agent_version, rollout=plan,
                               device_requirements=parse_requirements(args.requires))
    lines = [f"published {r['name']} {r['version']} on {r['channel']}: {r['target']} ({r['runtime']}, "
             f"{r['precision']}, sha256 {r['sha256'][:12]})" + (f", rollout {r['rollout']}" if "rollout" in r else "")
             for r in releases]
    _say(args, releases, "\n".join(lines))
    return 0


def run_refresh(args: argparse.Namespace) -> int:
    from edgeship.ship.repository import ShipRepository

    versions = ShipRepository(args.repo).refresh(tuple(args.role or ["timestamp"]))
    _say(args, versions, "re-signed " + ", ".join(f"{r} v{v}" for r, v in versions.items()))
    return 0


def run_rotate(args: argparse.Namespace) -> int:
    from edgeship.ship.repository import ShipRepository

    repo = ShipRepository(args.repo)
    keyid = repo.rotate_key(args.role)
    _say(args, {"role": args.role, "keyid": keyid, "root_version": repo.current_version("root")},
         f"{args.role} is now signed by key {keyid[:12]} (root v{repo.current_version('root')})")
    return 0


def run_add_key(args: argparse.Namespace) -> int:
    from edgeship.ship.verbs import add_signing_key

    keyid = add_signing_key(args.repo, args.role, args.uri, args.public_key)
    print(f"key {keyid[:12]} now signs {args.role}")
    return 0


def run_revoke_key(args: argparse.Namespace) -> int:
    from edgeship.ship.verbs import revoke_signing_key

    keyid = revoke_signing_key(args.repo, args.role, args.keyid)
    print(f"revoked {keyid[:12]} for {args.role}")
    return 0


def run_info(args: argparse.Namespace) -> int:
    from edgeship.ship.repository import ShipRepository

    s = ShipRepository(args.repo).summary()
    lines = [f"{role:9s} v{r['version']:<4d} expires {r['expires']}  threshold {r['threshold']} of "
             f"{len(r['keys'])} key(s)" for role, r in s["roles"].items()]
    for ch, models in s["channels"].items():
        lines += [f"channel {ch}: {name} -> {t}" for name, t in models.items()]
    _say(args, s, "\n".join(lines))
    return 0


def run_serve(args: argparse.Namespace) -> int:
    from edgeship.ship.serve import serve_repository

    server = serve_repository(args.repo, args.host, args.port, certfile=args.cert, keyfile=args.key)
    print(f"serving {server.folder} at {server.url} (metadata: {server.url}/metadata/, targets: "
          f"{server.url}/targets/); Ctrl-C stops", file=sys.stderr)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.httpd.server_close()
    return 0


def run_rollout_token(args: argparse.Namespace) -> int:
    from edgeship.ship.rollout.tokens import write_token

    print(f"wrote a new token to {write_token(args.file)} (mode 600)", file=sys.stderr)
    return 0


def run_rollout_server(args: argparse.Namespace) -> int:
    from edgeship.ship.rollout.limits import ServiceLimits
    from edgeship.ship.verbs import rollout_server

    limits = ServiceLimits(max_body_bytes=args.max_body_bytes, max_devices_per_token=args.max_devices_per_token,
                           reports_per_minute=args.reports_per_minute)
    server = rollout_server(args.db, args.host, args.port, args.admin_token_file, args.device_token_file,
                            insecure=args.insecure_no_auth, certfile=args.cert, keyfile=args.key, limits=limits)
    if server.tokens.open:
        print("warning: the rollout service runs without access tokens for " + " and ".join(server.tokens.open_roles),
              file=sys.stderr)
    print(f"rollout service at {server.url} (database {args.db}); Ctrl-C stops", file=sys.stderr)
    server.run()
    return 0


def run_rollout(args: argparse.Namespace) -> int:
    from edgeship.core.errors import UsageError
    from edgeship.ship.rollout.config import RolloutConfig, parse_stages
    from edgeship.ship.verbs import start_rollout, steer_rollout

    if args.action == "start":
        r = start_rollout(args.server, RolloutConfig(
            model=args.model or "", channel=args.channel, target=args.target or "", from_target=args.from_target,
            stages=parse_stages(args.stages), failure_threshold=args.failure_threshold,
            min_reports=args.min_reports, gates=telemetry_gates(args), rollback_on_halt=not args.hold_on_halt),
            args.token_file, repo=args.repo, ca_file=args.ca_file)
    else:
        if args.id is None:
            raise UsageError(f"ship rollout {args.action} needs the rollout id")
        r = steer_rollout(args.server, args.id, args.action, args.token_file, ca_file=args.ca_file)
    _say(args, r, f"rollout {r['id']}: {r['model']} -> {r['target']}: {r['status']} at {r['percent']:g}%")
    return 0


def run_status(args: argparse.Namespace) -> int:
    from edgeship.ship.verbs import fleet_status

    s = fleet_status(args.server, args.token_file, ca_file=args.ca_file)
    if args.json:
        print_json(s)
        return 0
    print(f"{s['fleet']['devices']} devices")
    for target, n in sorted(s["fleet"]["by_target"].items()):
        print(f"  {n:5d} on {target}")
    for r in s["rollouts"]:
        st = r["stats"]
        print(f"rollout {r['id']} {r['model']} -> {r['target']}: {r['status']} at {r['percent']:g}% "
              f"(cohort {st['cohort']}, {st['succeeded']} ok, {st['failed']} failed)"
              + (f" — {r['reason']}" if r.get("reason") else ""))
        for v in r.get("gate_results") or []:
            verdict = {True: "pass", False: "FAIL", None: "waiting"}[v["passed"]]
            print(f"    gate {v['gate']}: {verdict} — {v['why']}")
    return 0
