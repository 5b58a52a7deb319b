"""The report's verdict lines: the held-out worst case beside the probes', with n, intervals, samples."""

from __future__ import annotations

import numpy as np

from edgeship.check.judge import judge, with_probes
from edgeship.report.writers import verdict_stats


def test_verdict_lines_show_n_intervals_worst_samples_and_the_probes() -> None:
    rng = np.random.default_rng(0)
    ref = [{"emb": rng.standard_normal((1, 8)).astype(np.float32)} for _ in range(20)]
    cand = [{"emb": r["emb"] + rng.standard_normal((1, 8)).astype(np.float32) * 0.02} for r in ref]
    cand[5] = {"emb": -ref[5]["emb"]}  # a probe the candidate gets badly wrong
    held = judge(ref, cand[:4] + ref[4:], ["cosine_min>=0.9"], sample_ids=[f"s{i}" for i in range(20)])
    probes = judge(ref, cand, ["cosine_min>=0.9"], sample_ids=[f"probe {i}" for i in range(20)])
    res = with_probes(held, probes, True, ["constant"] * 20)
    assert res.status == "fail" and res.why.startswith("probes: cosine_min=")
    row = {"metrics": res.summary, "stats": res.stats, "n": res.rows, "probes": res.probes,
           "gate": {"marginal": []}, "instructions": "AMX-INT8, AVX512-VNNI"}
    held_line, probe_line, cpu = verdict_stats(row)
    assert held_line.startswith("held-out (n=20): cosine_mean ") and "[" in held_line and " at s" in held_line
    assert probe_line.startswith("probes (n=20, fail):") and "cosine_min -1.0000 at probe 5" in probe_line
    assert cpu == "runs on AMX-INT8, AVX512-VNNI"
