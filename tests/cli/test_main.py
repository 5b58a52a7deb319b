import subprocess
import sys
import time

import pytest

from edgeship.cli.main import main


def test_help_is_fast_and_imports_nothing_heavy():
    code = ("import sys, time; t=time.perf_counter(); from edgeship.cli.main import build_parser; "
            "build_parser().format_help(); import edgeship; "
            "heavy=[m for m in ('torch','onnx','onnxruntime','tensorflow','transformers','openvino','numpy') "
            "if m in sys.modules]; print(heavy, time.perf_counter()-t)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    heavy, seconds = out.rsplit(" ", 1)
    assert heavy.startswith("[]"), f"heavy modules imported at start-up: {heavy}"
    assert float(seconds) < 0.5
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "edgeship", "--help"], capture_output=True, check=True)
    assert time.perf_counter() - t0 < 2.0  # includes the interpreter's own start


def test_usage_errors_exit_2(capsys):
    assert main([]) == 2
    with pytest.raises(SystemExit) as exc:  # argparse's own usage error
        main(["check"])
    assert exc.value.code == 2
    assert main(["optimize"]) == 2
    assert "give a recipe file or --model" in capsys.readouterr().err
