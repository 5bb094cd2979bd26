"""Lava as the oracle: find (or build) a Lava environment and run a netx or Loihi graph file in it.

Lava needs Python 3.10 (lava-nc 0.10.0 breaks on 3.11) and lava-dl 0.6.0 pins torch 2.3, so it lives
in its own virtual environment and is driven as a subprocess: `run_lava` writes the input spikes to
an .npz, runs ``lava_runner.py`` (beside this module) with the environment's python, and reads the
spikes (and u, v) of every layer back.

The environment's python is, in order: the ``lava_python`` argument (``--lava-python``), the
``SNNPIPE_LAVA_PYTHON`` variable, or ``~/.cache/snnpipe-lava/bin/python``; when none exists it is
created there (``python3.10 -m venv``; ``pip install lava-dl==0.6.0``: minutes, about 5.6 GB) from
the first Python 3.10 that runs: every ``python3.10`` on PATH, then pyenv's installed versions
(``$PYENV_ROOT``, default ``~/.pyenv``), newest first. Each candidate is run, not trusted by its
name: pyenv's shim on PATH exits 127 when 3.10 is installed but not the active version.

It is built once however many processes ask, never half built (`sidecar.ensure_venv`).
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from snnpipe.errors import SnnpipeError
from snnpipe.hw_targets.sidecar import build_venv, ensure_venv

LAVA_DL_VERSION = "0.6.0"
ENV_VARIABLE = "SNNPIPE_LAVA_PYTHON"
RUNNER = Path(__file__).with_name("lava_runner.py")
_CHECK = (
    "import importlib.metadata as m, sys; "
    f"sys.exit(0 if m.version('lava-dl') == '{LAVA_DL_VERSION}' and sys.version_info[:2] == (3, 10) else 3)"
)


class LavaUnavailableError(SnnpipeError):
    """No Lava environment, and none can be made here: the message says why and what to do."""


class LavaRunError(SnnpipeError):
    """Lava ran and failed."""


def default_env_dir() -> Path:
    """Where snnpipe keeps its Lava environment: ``~/.cache/snnpipe-lava``."""
    return Path.home() / ".cache" / "snnpipe-lava"


#: How long a Lava environment's python may take to answer the version check (importing nothing).
CHECK_SECONDS = 120.0


def _is_lava_python(python: Path) -> bool:
    """Whether ``python`` is a Python 3.10 with lava-dl 0.6.0: False only where it answered no (or
    cannot run at all), since a False has its environment rebuilt (5.6 GB).

    Raises:
        LavaUnavailableError: the check could not be made: no answer in `CHECK_SECONDS`, killed by
            a signal (the OOM killer), or no process to run it in (EAGAIN, ENOMEM): a busy
            machine, not a broken environment.
    """
    if not python.is_file():
        return False
    busy = None
    try:
        code = subprocess.run([str(python), "-c", _CHECK], capture_output=True, timeout=CHECK_SECONDS).returncode
        if code >= 0:
            return code == 0
        busy = f"was killed by signal {-code} while checking its version"
    except subprocess.TimeoutExpired:
        busy = f"did not answer in {CHECK_SECONDS:g} s"
    except OSError as err:
        if err.errno not in (errno.EAGAIN, errno.ENOMEM):
            return False
        busy = f"could not be started ({os.strerror(err.errno)})"
    raise LavaUnavailableError(f"{python} {busy} (a busy machine?); nothing was changed: try again when the machine "
                               "is quieter")


#: Run by each candidate interpreter: it must be 3.10 and able to make a virtual environment.
_PYTHON310_CHECK = "import sys, venv, ensurepip; sys.exit(0 if sys.version_info[:2] == (3, 10) else 3)"


def python310_candidates() -> list[Path]:
    """Every ``python3.10`` on PATH, in PATH order, then pyenv's ``versions/3.10*/bin/python3.10``,
    newest first (duplicates removed)."""
    found: list[Path] = []
    for folder in os.environ.get("PATH", "").split(os.pathsep):
        exe = Path(folder or ".") / "python3.10"
        if exe.is_file() and os.access(exe, os.X_OK):
            found.append(exe)
    root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")
    versions = sorted((root / "versions").glob("3.10*/bin/python3.10"),
                      key=lambda p: tuple(int(n) for n in p.parents[1].name.split(".") if n.isdigit()), reverse=True)
    found.extend(versions)
    unique: list[Path] = []
    for path in found:
        if path not in unique:
            unique.append(path)
    return unique


def _runs_as_python310(python: Path) -> bool:
    try:
        return subprocess.run([str(python), "-c", _PYTHON310_CHECK], capture_output=True, timeout=60).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def find_python310() -> tuple[Path | None, list[Path]]:
    """The first candidate (`python310_candidates`) that runs as a Python 3.10 with venv, and every
    candidate tried, for the message when none does."""
    tried = python310_candidates()
    return next((python for python in tried if _runs_as_python310(python)), None), tried


def create_env(env_dir: Path, base: Path) -> Path:
    """``base -m venv env_dir`` then ``pip install lava-dl==0.6.0``; returns the new python.

    Raises:
        LavaUnavailableError: venv or pip failed (the message carries their last line).
    """
    print(f"creating the Lava environment at {env_dir} (pip install lava-dl=={LAVA_DL_VERSION}; several minutes)",
          file=sys.stderr, flush=True)
    return build_venv(env_dir, base, [f"lava-dl=={LAVA_DL_VERSION}"], LavaUnavailableError,
                      f"install lava-dl=={LAVA_DL_VERSION} in a Python 3.10 environment and pass --lava-python PATH")


def lava_python(explicit: str | Path | None = None, create: bool = True) -> Path:
    """The python of a working Lava environment (module docstring), creating one if allowed.

    Raises:
        LavaUnavailableError: the given python has no lava-dl 0.6.0, or there is none and no Python
            3.10 to build one with.
    """
    given = explicit or os.environ.get(ENV_VARIABLE)
    if given:
        python = Path(given).expanduser()
        source = "--lava-python" if explicit else ENV_VARIABLE
        if not _is_lava_python(python):
            raise LavaUnavailableError(
                f"{source} {python} is not a Python 3.10 with lava-dl {LAVA_DL_VERSION}; point it at the Lava "
                f"environment's python, or leave it unset to use {default_env_dir()}"
            )
        return python
    env_dir = default_env_dir()
    python = env_dir / "bin" / "python"
    if _is_lava_python(python):
        return python
    base, tried = find_python310() if create else (None, [])
    if base is None:
        looked = f"tried {', '.join(map(str, tried))}: none runs as Python 3.10 with venv" if tried else (
            "no python3.10 on PATH or in pyenv's versions")
        raise LavaUnavailableError(
            f"--verify lava needs Lava (Python 3.10 with lava-dl {LAVA_DL_VERSION}): there is none at {env_dir} and "
            f"none was built ({looked if create else 'create=False'}); install Python 3.10 "
            f"(e.g. pyenv install 3.10) or pass --lava-python PATH (or set {ENV_VARIABLE})"
        )
    return ensure_venv(env_dir, _is_lava_python, lambda new: create_env(new, base))


@dataclass
class LavaRun:
    """Lava's answer for N samples.

    Attributes:
        spikes: per layer, (N, steps, *shape) uint8, shape in (C, H, W) order.
        current, voltage: per layer, (N, steps, *shape) int64 where ``state`` asked for it, else None.
        seconds_build, seconds_run: inside the runner (network and probes; compile and run).
        seconds_total: the whole subprocess, Python start-up and imports included.
    """

    spikes: list[np.ndarray]
    current: list[np.ndarray | None]
    voltage: list[np.ndarray | None]
    seconds_build: float
    seconds_run: float
    seconds_total: float


def lava_input(x, steps: int) -> np.ndarray:
    """Input x (T, N, ...), spikes or graded integers, a tensor or an array, as `run_lava` takes it:
    (N, steps, ...) int32, zeros after the T input steps (while the layers' one-step delays drain)."""
    x = np.asarray(x)
    padded = np.zeros((x.shape[1], steps, *x.shape[2:]), dtype=np.int32)
    padded[:, :x.shape[0]] = np.swapaxes(x, 0, 1)
    return padded


def run_lava(net_path: str | Path, x: np.ndarray, python: str | Path | None = None, state: str | None = None,
             timeout: float = 3600.0) -> LavaRun:
    """Run the netx or graph file on its input in ``Loihi2SimCfg(select_tag="fixed_pt")``.

    Args:
        net_path: the netx HDF5 file.
        x: (N, steps, C, H, W) binary spikes or graded integers (zeros after the input's T steps): `lava_input`.
        python: the Lava environment's python (default: `lava_python()`).
        state: also record u and v after every step: ``all`` layers, or the ``last`` one.

    Raises:
        LavaUnavailableError: no Lava environment (see `lava_python`).
        LavaRunError: the runner failed; the message carries the last line of its error output.
    """
    python = Path(python) if python is not None else lava_python()
    with tempfile.TemporaryDirectory(prefix="snnpipe-lava-") as tmp:
        inputs, outputs = Path(tmp) / "input.npz", Path(tmp) / "output.npz"
        np.savez(inputs, x=np.ascontiguousarray(x, dtype=np.int32))
        command = [str(python), str(RUNNER), str(Path(net_path).resolve()), str(inputs), str(outputs)]
        if state is not None:
            if state not in ("all", "last"):
                raise ValueError(f"state={state!r} is not 'all', 'last' or None")
            command.append(f"--state={state}")
        started = time.perf_counter()
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=tmp)
        except subprocess.TimeoutExpired:
            raise LavaRunError(f"Lava did not finish within {timeout:.0f} s; verify on fewer samples") from None
        seconds = time.perf_counter() - started
        if done.returncode != 0 or not outputs.exists():
            lines = [line for line in done.stderr.strip().splitlines() if line.strip()]
            raise LavaRunError(f"Lava failed on {net_path} ({lines[-1] if lines else f'exit {done.returncode}'})")
        with np.load(outputs) as data:
            layers = int(data["layers"])
            spikes = [data[f"spikes_{i}"] for i in range(layers)]
            current = [data[f"u_{i}"] if f"u_{i}" in data else None for i in range(layers)]
            voltage = [data[f"v_{i}"] if f"v_{i}" in data else None for i in range(layers)]
            return LavaRun(spikes, current, voltage, float(data["seconds_build"]), float(data["seconds_run"]), seconds)
