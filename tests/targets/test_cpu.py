"""CPU instruction sets behind each precision, read at run time."""

from __future__ import annotations

from edgeship.targets.cpu import cpu_info, parse_cpuinfo

ZEN4 = """processor\t: 0
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC 9R14
flags\t\t: fpu sse2 avx2 fma avx512f avx512_vnni avx512_bf16 avx512vl
processor\t: 1
model name\t: AMD EPYC 9R14
flags\t\t: fpu
"""
SAPPHIRE = """model name\t: Intel(R) Xeon(R) Platinum 8488C
flags\t\t: avx2 fma avx512f avx512_vnni avx512_bf16 avx512_fp16 avx_vnni amx_bf16 amx_int8 amx_tile
"""


def test_precisions_name_the_instructions_this_cpu_has() -> None:
    zen = parse_cpuinfo(ZEN4)
    assert zen.model == "AMD EPYC 9R14" and "avx512_bf16" in zen.flags  # the first processor's flags
    assert zen.instructions("int8") == ["AVX512-VNNI"] and zen.instructions("bf16") == ["AVX512-BF16"]
    assert zen.instructions("fp16") == [] and "converted to f32" in zen.describe("fp16")
    xeon = parse_cpuinfo(SAPPHIRE)
    assert xeon.instructions("int8-static") == ["AMX-INT8", "AVX512-VNNI", "AVX-VNNI"]
    assert xeon.instructions("bf16")[0] == "AMX-BF16" and xeon.instructions("fp16") == ["AVX512-FP16"]
    assert xeon.to_dict()["by_precision"]["int8"][0] == "AMX-INT8"
    assert parse_cpuinfo("").instructions("int8") == []


def test_this_machine_is_read_from_proc_cpuinfo() -> None:
    info = cpu_info()
    assert info.model and info.flags  # Linux: the flags line is there
    assert "FMA" in info.instructions("fp32") or "AVX2" in info.instructions("fp32")
