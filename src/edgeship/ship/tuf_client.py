"""``edgeship-tuf-client``: the device's TUF update client behind the command-line protocol of the TUF
conformance suite (theupdateframework/tuf-conformance, CLIENT-CLI.md), so the suite can test the
very code the agent uses (``open_updater`` with the agent's ``DeadlineFetcher``)::

    edgeship-tuf-client --metadata-dir D init ROOT.json
    edgeship-tuf-client --metadata-dir D --metadata-url URL refresh
    edgeship-tuf-client --metadata-dir D --metadata-url URL --target-name P --target-base-url URL \\
        --target-dir T download

Exit code 0 when the command succeeded fully, 1 otherwise (the protocol's rule).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any


def open_updater(metadata_dir: str | Path, metadata_url: str, target_dir: str | Path | None = None,
                 target_url: str | None = None, fetcher: Any = None, bootstrap: bytes | None = None) -> Any:
    """A python-tuf ``Updater`` over ``metadata_dir``; without ``bootstrap`` the trusted root is the
    one already in ``metadata_dir`` (written by ``init`` or by an earlier refresh)."""
    from tuf.ngclient import Updater

    from edgeship.ship.fetcher import DeadlineFetcher

    return Updater(str(metadata_dir), metadata_url, str(target_dir) if target_dir else None, target_url,
                   fetcher=fetcher or DeadlineFetcher(socket_timeout=10.0), bootstrap=bootstrap)


def cmd_init(metadata_dir: Path, root: Path) -> None:
    """Trust ``root`` as the initial root: no request is made, no check beyond parsing as bytes."""
    data = root.read_bytes()
    metadata_dir.mkdir(parents=True, exist_ok=True)
    tmp = metadata_dir / ".root.json.tmp"
    tmp.write_bytes(data)
    os.replace(tmp, metadata_dir / "root.json")


def cmd_refresh(metadata_dir: Path, metadata_url: str) -> None:
    open_updater(metadata_dir, metadata_url).refresh()


def cmd_download(metadata_dir: Path, metadata_url: str, target_names: list[str], target_url: str,
                 target_dir: Path) -> list[str]:
    """Download targets in order with one updater; a target already cached (same hashes) is not
    downloaded again."""
    target_dir.mkdir(parents=True, exist_ok=True)
    updater = open_updater(metadata_dir, metadata_url, target_dir, target_url)
    updater.refresh()
    paths = []
    for name in target_names:
        info = updater.get_targetinfo(name)
        if info is None:
            raise LookupError(f"target {name!r} not found")
        paths.append(updater.find_cached_target(info) or updater.download_target(info))
    return paths


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="edgeship-tuf-client",
                                description="TUF client (tuf-conformance CLIENT-CLI protocol) built on the edgeship "
                                            "agent's updater.")
    p.add_argument("--metadata-dir", required=True, type=Path)
    p.add_argument("--metadata-url")
    p.add_argument("--target-name", action="append", default=[], help="repeatable: downloaded in order")
    p.add_argument("--target-base-url")
    p.add_argument("--target-dir", type=Path)
    p.add_argument("-v", "--verbose", action="store_true")
    p.add_argument("command", choices=["init", "refresh", "download"])
    p.add_argument("root", nargs="?", type=Path, help="trusted root.json (init)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "init":
            if args.root is None:
                raise ValueError("init needs the trusted root file")
            cmd_init(args.metadata_dir, args.root)
        elif args.command == "refresh":
            if not args.metadata_url:
                raise ValueError("refresh needs --metadata-url")
            cmd_refresh(args.metadata_dir, args.metadata_url)
        else:
            if not (args.metadata_url and args.target_name and args.target_base_url and args.target_dir):
                raise ValueError("download needs --metadata-url, --target-name, --target-base-url and --target-dir")
            paths = cmd_download(args.metadata_dir, args.metadata_url, args.target_name, args.target_base_url,
                                 args.target_dir)
            if args.verbose:
                print("\n".join(paths))
    except Exception as exc:  # the protocol wants exit 1 for any failure, with the reason on stderr
        print(f"edgeship-tuf-client: {args.command} failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
