"""``edgeship inspect``, ``edgeship zoo`` and ``edgeship data``: what a model is, what ships."""

from __future__ import annotations

import argparse
from typing import Any

from edgeship.cli.common import add_json_arg, print_json


def register(sub: Any) -> None:
    p = sub.add_parser("inspect", help="show a model's inputs, outputs, provenance and measured facts",
                       description="Show a model file's IO spec (with symbolic dims), provenance chain and facts.")
    p.add_argument("model", help="a model file (.onnx, .tflite, ...)")
    add_json_arg(p)
    p.set_defaults(func=run_inspect)
    z = sub.add_parser("zoo", help="list the bundled real models", description="List the bundled models.")
    add_json_arg(z)
    z.set_defaults(func=run_zoo)
    d = sub.add_parser("data", help="list the bundled data sets", description="List the bundled data sources.")
    add_json_arg(d)
    d.set_defaults(func=run_data)


def run_inspect(args: argparse.Namespace) -> int:
    from edgeship import api

    model = api.inspect(args.model)
    info = {**model.to_dict(), "size_bytes": model.size_bytes, "sha256": model.sha256}
    if args.json:
        print_json(info)
        return 0
    print(f"{model.path} ({model.format}, {model.size_bytes / 1e6:.2f} MB)")
    print("inputs:")
    for t in model.io.inputs:
        print(f"  {t}")
    print("outputs:")
    for t in model.io.outputs:
        print(f"  {t}")
    if model.provenance:
        print("provenance:")
        for s in model.provenance:
            print(f"  {s.stage} from {s.source} {s.at}")
    if model.facts:
        print("facts: " + ", ".join(sorted(model.facts)))
    return 0


def run_zoo(args: argparse.Namespace) -> int:
    from edgeship import api

    rows = [{"name": e.name, "about": e.about} for e in api.zoo()]
    if args.json:
        print_json(rows)
    else:
        for r in rows:
            print(f"{r['name']:<24} {r['about']}")
    return 0


def run_data(args: argparse.Namespace) -> int:
    from edgeship import api

    rows = [{"name": e.name, "splits": list(e.splits), "default_split": e.default_split, "about": e.about}
            for e in api.data_sets()]
    if args.json:
        print_json(rows)
    else:
        for r in rows:
            splits = f" [{'|'.join(r['splits'])}]" if r["splits"] else ""
            print(f"{r['name'] + splits:<36} {r['about']}")
    return 0
