"""``edgeship ship``: the signed update repository (TUF) and the rollout service."""

from __future__ import annotations

import argparse
import json
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
  edgeship ship rollout start --server http://127.0.0.1:8081 --token-file admin.token --model digits-cnn \\
      --target models/digits-cnn/1.1.0/model.onnx --from models/digits-cnn/1.0.0/model.onnx
  edgeship ship status --server http://127.0.0.1:8081 --token-file admin.token
"""


def _role_values(items: list[str], what: str, cast: Any) -> dict[str, Any]:
    from edgeship.core.errors import UsageError
    from edgeship.ship.keys import ROLES

    out: dict[str, Any] = {}
    for item in items:
        role, sep, value = item.partition("=")
        if not sep or role not in ROLES:
            raise UsageError(f"{what} {item!r}: expected ROLE=VALUE with ROLE one of {', '.join(ROLES)}")
        try:
            out[role] = cast(value)
        except ValueError:
            raise UsageError(f"{what} {item!r}: {value!r} is not a number") from None
    return out


def register(sub: Any) -> None:
    p = sub.add_parser("ship", help="signed over-the-air updates: TUF repository, publishing, rollouts",
                       description="Publish models to a signed TUF update repository, serve it, and stage rollouts "
                                   "to a fleet of devices running `edgeship agent`.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    ss = p.add_subparsers(dest="ship_command", metavar="SUBCOMMAND")

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
    q.add_argument("--rollout", metavar="URL", help="also start a staged rollout on this rollout service")
    q.add_argument("--token-file", type=Path, metavar="FILE", help="the rollout service's admin token")
    q.add_argument("--stages", default="1,10,50,100", help="rollout stages in percent")
    q.add_argument("--failure-threshold", type=float, default=0.2)
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

    q = ss.add_parser("serve", help="serve REPO/public over HTTP (range requests; no listings)")
    q.add_argument("repo", type=Path)
    q.add_argument("--port", type=int, default=8080)
    q.add_argument("--host", default="127.0.0.1")
    q.set_defaults(func=run_serve)

    q = ss.add_parser("rollout-token", help="write a new random access token for the rollout service (mode 600)")
    q.add_argument("file", type=Path)
    q.set_defaults(func=run_rollout_token)

    q = ss.add_parser("rollout-server", help="run the rollout service (FastAPI + SQLite)",
                      description="Operators need the admin token (rollouts, status), devices the device token "
                                  "(assignments, reports). Without tokens the service is open, which is allowed "
                                  "on 127.0.0.1 only unless --insecure-no-auth.")
    q.add_argument("--db", type=Path, default=Path("rollouts.db"))
    q.add_argument("--port", type=int, default=8081)
    q.add_argument("--host", default="127.0.0.1")
    q.add_argument("--admin-token-file", type=Path, metavar="FILE", help="token operators must present")
    q.add_argument("--device-token-file", type=Path, metavar="FILE", help="token devices must present")
    q.add_argument("--insecure-no-auth", action="store_true",
                   help="serve without tokens on a non-loopback address (a network you trust)")
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
    add_json_arg(q)
    q.set_defaults(func=run_rollout)

    q = ss.add_parser("status", help="the fleet as the rollout service sees it")
    q.add_argument("--server", required=True, metavar="URL")
    q.add_argument("--token-file", type=Path, metavar="FILE", help="the service's admin token")
    add_json_arg(q)
    q.set_defaults(func=run_status)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def _stages(text: str) -> tuple[float, ...]:
    from edgeship.core.errors import UsageError

    try:
        return tuple(float(s) for s in text.split(",") if s.strip())
    except ValueError:
        raise UsageError(f"--stages {text!r}: give percentages such as 1,10,50,100") from None


def _say(args: argparse.Namespace, obj: Any, text: str) -> None:
    if getattr(args, "json", False):
        print_json(obj)
    else:
        print(text)


def run_init(args: argparse.Namespace) -> int:
    from edgeship.ship.repository import RepoConfig, init_repo

    fields: dict[str, Any] = {f"{r}_threshold": v for r, v in _role_values(args.threshold, "--threshold", int).items()}
    fields.update({f"{r}_expiry_days": v for r, v in _role_values(args.expiry_days, "--expiry-days", float).items()})
    repo = init_repo(args.repo, RepoConfig(**fields), _role_values(args.keys, "--keys", int))
    s = repo.summary()
    _say(args, s, f"created {args.repo}: keys in {args.repo}/keys (mode 600), serve {args.repo}/public; "
                  f"provision devices with {args.repo}/public/metadata/1.root.json")
    return 0


def run_publish(args: argparse.Namespace) -> int:
    from edgeship.ship.publish import publish
    from edgeship.ship.repository import ShipRepository

    repo = ShipRepository(args.repo)
    options: dict[str, Any] = {}
    if not args.source.is_dir():
        options = {"name": args.name, "runtime": args.runtime, "precision": args.precision,
                   "gates": args.gate or None, "latency_budget_ms": args.latency_budget_ms,
                   "min_agent_version": args.min_agent_version}
    else:
        options = {"name": args.name, "min_agent_version": args.min_agent_version}
    releases = publish(repo, args.source, args.channel, args.version, golden=args.golden, **options)
    if args.rollout:
        from edgeship.ship.rollout import RolloutConfig

        client = _client(args.rollout, args.token_file)
        for rel in releases:
            rel["rollout"] = client.start(RolloutConfig(
                model=rel["name"], channel=args.channel, target=rel["target"], from_target=rel["previous"],
                stages=_stages(args.stages), failure_threshold=args.failure_threshold))["id"]
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
    from securesystemslib.signer import Key

    from edgeship.core.errors import BadInput
    from edgeship.ship.repository import ShipRepository

    try:
        text = args.public_key.read_text()
        if "BEGIN PUBLIC KEY" in text:  # a PEM public key: the key id is computed from it
            from cryptography.hazmat.primitives.serialization import load_pem_public_key
            from securesystemslib.signer import SSlibKey

            key = SSlibKey.from_crypto(load_pem_public_key(text.encode()))
        else:
            data = json.loads(text)
            key = Key.from_dict(data.pop("keyid"), data)
    except (OSError, ValueError, KeyError) as exc:
        raise BadInput(f"--public-key {args.public_key}: not a PEM public key nor a key JSON with keyid, keytype, "
                       f"scheme, keyval ({type(exc).__name__}: {exc})") from None
    ShipRepository(args.repo).add_key(args.role, args.uri, key)
    print(f"key {key.keyid[:12]} now signs {args.role}")
    return 0


def run_revoke_key(args: argparse.Namespace) -> int:
    from edgeship.core.errors import BadInput
    from edgeship.ship.repository import ShipRepository

    repo = ShipRepository(args.repo)
    keyids = [k for k in repo.load("root").signed.roles[args.role].keyids if k.startswith(args.keyid)]
    if len(keyids) != 1:
        raise BadInput(f"key {args.keyid!r} matches {len(keyids)} keys of {args.role}; give a longer prefix")
    repo.revoke_key(args.role, keyids[0])
    print(f"revoked {keyids[0][:12]} for {args.role}")
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

    server = serve_repository(args.repo, args.host, args.port)
    print(f"serving {server.folder} at {server.url} (metadata: {server.url}/metadata/, targets: "
          f"{server.url}/targets/); Ctrl-C stops", file=sys.stderr)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.httpd.server_close()
    return 0


def _client(url: str, token_file: Path | None) -> Any:
    from edgeship.ship.rollout import RolloutClient, read_token

    return RolloutClient(url, token=read_token(token_file) if token_file else None)


def run_rollout_token(args: argparse.Namespace) -> int:
    from edgeship.ship.rollout import write_token

    print(f"wrote a new token to {write_token(args.file)} (mode 600)", file=sys.stderr)
    return 0


def run_rollout_server(args: argparse.Namespace) -> int:
    from edgeship.ship.rollout import AccessTokens, RolloutServer, read_token

    tokens = AccessTokens(admin=read_token(args.admin_token_file) if args.admin_token_file else None,
                          device=read_token(args.device_token_file) if args.device_token_file else None)
    server = RolloutServer(args.db, args.host, args.port, tokens=tokens, insecure=args.insecure_no_auth)
    if tokens.open:
        print("warning: the rollout service runs without access tokens for "
              + " and ".join(r for r, t in (("operators", tokens.admin), ("devices", tokens.device)) if t is None),
              file=sys.stderr)
    print(f"rollout service at {server.url} (database {args.db}); Ctrl-C stops", file=sys.stderr)
    server.run()
    return 0


def run_rollout(args: argparse.Namespace) -> int:
    from edgeship.core.errors import UsageError
    from edgeship.ship.rollout import RolloutConfig

    client = _client(args.server, args.token_file)
    if args.action == "start":
        r = client.start(RolloutConfig(model=args.model or "", channel=args.channel, target=args.target or "",
                                       from_target=args.from_target, stages=_stages(args.stages),
                                       failure_threshold=args.failure_threshold, min_reports=args.min_reports))
    else:
        if args.id is None:
            raise UsageError(f"ship rollout {args.action} needs the rollout id")
        r = client.action(args.id, args.action)
    _say(args, r, f"rollout {r['id']}: {r['model']} -> {r['target']}: {r['status']} at {r['percent']:g}%")
    return 0


def run_status(args: argparse.Namespace) -> int:
    s = _client(args.server, args.token_file).status()
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
    return 0
