"""A quiet start-up: TensorFlow's native start-up lines kept off the terminal unless
`verbose=true`.

TensorFlow's C++ libraries log through absl before absl::InitializeLog() is called, and those
lines (oneDNN, CUDA stubs, cpu_feature_guard, `failed call to cuInit ... (303)` on a machine
without a GPU) ignore TF_CPP_MIN_LOG_LEVEL. So besides setting that variable, the command line
points file descriptor 2 at a pipe whose reader drops exactly those lines and passes everything
else on; Python's own sys.stderr keeps writing straight to the terminal. Worker processes
(joblib, Ray) inherit both the environment and the filtered descriptor.
"""

from __future__ import annotations

import atexit
import os
import re
import sys
import threading

# Set before TensorFlow is imported; a value the user set wins.
QUIET_ENVIRONMENT = {
    "TF_CPP_MIN_LOG_LEVEL": "2",  # TensorFlow's own INFO and WARNING lines
    "GRPC_VERBOSITY": "ERROR",  # gRPC, which TensorFlow loads, logs through absl too
}

# One native log line: severity, date, time, thread, file:line] (absl and glog formats).
_NATIVE_LINE = re.compile(rb"^([IWE])\d{4} \d\d:\d\d:\d+\.\d+\s+\d+ [^\]]+\] ")
# Errors that are expected on a machine without a GPU or with every CUDA plugin registered.
_HARMLESS_ERRORS = re.compile(
    rb"failed call to cuInit|Unable to register cu(DNN|FFT|BLAS) factory|"
    rb"could not retrieve CUDA device count"
)
_BANNER_LINES = (
    b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    b"To enable the following instructions:",
)


def is_startup_noise(line: bytes) -> bool:
    """Whether a line of native stderr output is a start-up notice rather than a problem."""
    if line.startswith(_BANNER_LINES):
        return True
    native = _NATIVE_LINE.match(line)
    if native is None:
        return False
    return native.group(1) in (b"I", b"W") or bool(_HARMLESS_ERRORS.search(line))


def parse_verbose(args: list[str]) -> bool:
    """The value of the last `verbose=` argument (default false)."""
    from embcompare.errors import EmbcompareError

    values = [a.split("=", 1)[1] for a in args if a.split("=", 1)[0] in ("verbose", "++verbose")]
    if not values:
        return False
    if values[-1].lower() not in ("true", "false"):
        raise EmbcompareError(f"verbose={values[-1]!r} must be true or false")
    return values[-1].lower() == "true"


def quiet_startup() -> None:
    """Set the environment and filter this process's (and its children's) native stderr."""
    for name, value in QUIET_ENVIRONMENT.items():
        os.environ.setdefault(name, value)
    _filter_native_stderr()


def _filter_native_stderr() -> None:
    sys.stderr.flush()
    terminal = os.dup(2)
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)
    # Python writes directly to the terminal: no delay, and tqdm's carriage returns stay live
    sys.stderr = open(  # noqa: SIM115 - lives as long as the process
        terminal, "w", buffering=1, encoding=sys.stderr.encoding, errors="backslashreplace"
    )
    forwarder = threading.Thread(
        target=_forward, args=(read_end, terminal), name="stderr-filter", daemon=True
    )
    forwarder.start()

    def drain() -> None:
        sys.stderr.flush()
        os.dup2(terminal, 2)  # closes this process's write end of the pipe
        forwarder.join(timeout=2)  # workers still alive may hold it open

    atexit.register(drain)


def _forward(read_end: int, terminal: int) -> None:
    """Copy the pipe to the terminal, line by line, leaving out start-up notices."""
    pending = b""
    while chunk := os.read(read_end, 1 << 16):
        pending += chunk
        *lines, pending = re.split(rb"(?<=[\n\r])", pending)
        kept = b"".join(line for line in lines if not is_startup_noise(line))
        if kept:
            os.write(terminal, kept)
    if pending and not is_startup_noise(pending):
        os.write(terminal, pending)
    os.close(read_end)
