"""Keeping third-party noise out of our output.

The libraries edgeship drives print banners (TensorFlow, absl, oneDNN), CUDA-only notes on CPU
machines (torchao's "Failed to load ... .so"), deprecation chatter (torch's pytree, transformers) and
progress bars of their own (NNCF) that interleave with ours. By default all of that is silenced:
:func:`configure` sets the environment variables the C++ back-ends read and raises their Python
loggers to ERROR, and :func:`third_party_output` captures what a library call writes to the
terminal (its bars and prints), handing the text back for error messages. ``edgeship --verbose``
(or ``EDGESHIP_VERBOSE=1``) shows everything.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
import warnings
from collections.abc import Iterator

# transformers imports torchao, which logs CUDA-only notes on CPU machines: noise, not news.
TORCHAO_NOISE = ("torchao", "torch.utils._pytree")
# Python loggers of the libraries edgeship drives; raised to ERROR unless verbose.
THIRD_PARTY_LOGGERS = (*TORCHAO_NOISE, "transformers", "optimum", "nncf", "tensorflow", "absl", "onnx2tf", "jax",
                       "onnxscript", "torch.onnx", "torch.export", "torch._dynamo", "torch._export", "executorch",
                       "coremltools", "huggingface_hub", "urllib3", "h5py", "numexpr", "openvino")
# Environment the C++ back-ends read at import: set before they are imported, only where the user
# has not chosen otherwise.
QUIET_ENV = {
    "TF_CPP_MIN_LOG_LEVEL": "3",  # TensorFlow's C++ INFO/WARNING lines, the oneDNN and cpu-feature banners
    "GRPC_VERBOSITY": "ERROR",
    "GLOG_minloglevel": "2",
    "TRANSFORMERS_VERBOSITY": "error",
    "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "TQDM_DISABLE": "1",
    # worker processes (optimize's executor, benchmarks) start with Python's default warning filters
    "PYTHONWARNINGS": "ignore::DeprecationWarning,ignore::FutureWarning",
}
_VERBOSE_ENV = "EDGESHIP_VERBOSE"


def is_verbose() -> bool:
    """Whether third-party output is shown (``--verbose`` or ``EDGESHIP_VERBOSE=1``)."""
    return os.environ.get(_VERBOSE_ENV, "") not in ("", "0", "false", "no")


def configure(verbose: bool = False) -> None:
    """Silence third-party banners, notes and bars for this process (show them when ``verbose``).

    Called once by the command line before anything heavy is imported; the Python API leaves the
    caller's logging alone unless it calls this itself."""
    if verbose:
        os.environ[_VERBOSE_ENV] = "1"
        return
    for key, value in QUIET_ENV.items():
        os.environ.setdefault(key, value)
    for name in THIRD_PARTY_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    # warnings that libraries raise at users of their users (deprecations, "TypedStorage", ...)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=UserWarning, module=r"(torch|transformers|optimum|nncf|onnx2tf|tf_keras"
                                                                   r"|tensorflow|keras|onnxscript|torchao)(\.|$)")


@contextlib.contextmanager
def quiet_loggers(*names: str) -> Iterator[None]:
    """Raise the given loggers to ERROR for the duration of the block (unless verbose)."""
    if is_verbose():
        yield
        return
    loggers = [logging.getLogger(n) for n in names]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


@contextlib.contextmanager
def captured_output() -> Iterator[list[str]]:
    """Capture what any code (C/C++ included) writes to file descriptors 1 and 2 in the block, and
    what Python code writes to ``sys.stdout``/``sys.stderr`` (which need not be those descriptors:
    a notebook's, a test runner's); the text lands in the yielded list when the block ends."""
    import io

    box: list[str] = []
    sys.stdout.flush()
    sys.stderr.flush()
    python_level = io.StringIO()
    with tempfile.TemporaryFile(mode="w+b") as tmp:
        saved = [os.dup(1), os.dup(2)]
        try:
            os.dup2(tmp.fileno(), 1)
            os.dup2(tmp.fileno(), 2)
            with contextlib.redirect_stdout(python_level), contextlib.redirect_stderr(python_level):
                yield box
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)
            tmp.seek(0)
            box.append(tmp.read().decode("utf-8", "replace") + python_level.getvalue())


@contextlib.contextmanager
def third_party_output() -> Iterator[list[str]]:
    """Around a call into a library that prints (progress bars, banners): captured unless verbose.
    The yielded list holds the text afterwards (empty when verbose), for error messages."""
    if is_verbose():
        yield []
        return
    with captured_output() as box:
        yield box


def last_line(text: str | list[str], limit: int = 300) -> str:
    """The last non-empty line of captured output (what a failing library said last)."""
    joined = "".join(text) if isinstance(text, list) else text
    lines = [ln for ln in joined.splitlines() if ln.strip()]
    return lines[-1][:limit] if lines else "no message"
