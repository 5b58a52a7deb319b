"""Fleet simulation: 200 device agents on loopback through a staged rollout (canary 2% → 10% → 50% →
100%), 5% of the devices with injected faults (dropped and stalled downloads, crashes mid-update),
then a bad model published: its rollout must halt by itself at the stage where it failed, and no
device may be left without a working model.

    .venv/bin/python benchmarks/fleet_simulation.py [--devices 200] [--fault-rate 0.05] [--json OUT]

Exits 1 when a device is left without a working model or the bad rollout did not halt.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from edgeship.ship.fleet import simulate


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--devices", type=int, default=200)
    p.add_argument("--fault-rate", type=float, default=0.05)
    p.add_argument("--poll", type=float, default=3.0, help="seconds between a device's update checks")
    p.add_argument("--timeout", type=float, default=280.0)
    p.add_argument("--work", type=Path, default=None, help="folder for the repository and devices (default: temp)")
    p.add_argument("--json", type=Path, default=None, help="also write the figures to this JSON file")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="edgeship-fleet-") as tmp:
        work = args.work or Path(tmp) / "fleet"
        result = simulate(work, devices=args.devices, fault_rate=args.fault_rate, poll_s=args.poll,
                          timeout_s=args.timeout)
    print(json.dumps({k: v for k, v in result.items() if k != "broken"}, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    ok = result["without_working_model"] == 0 and result["v3_rollout"]["status"] == "halted"
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
