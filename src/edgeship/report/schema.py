"""The version of ``report.json``'s layout and its JSON Schema (``report.schema.json`` beside this
file; docs/report-schema.md describes every field). A change that renames, removes or retypes a
field raises ``SCHEMA_VERSION``; new optional fields do not need to, and readers ignore fields they
do not know."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

# 1: reports before the version was written (no "schema_version" key).
# 2: adds schema_version, recommendation (what to ship per target and why), and per row the
#    benchmark's latency_stats, latency_quantiles_ms, cpu_ms_per_inference and instructions_per_inference.
SCHEMA_VERSION = 2


def schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of report.json at SCHEMA_VERSION."""
    return json.loads((resources.files("edgeship.report") / "report.schema.json").read_text(encoding="utf-8"))
