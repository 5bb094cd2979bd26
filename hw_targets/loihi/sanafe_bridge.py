"""SANA-FE as the calibrated Loihi energy and latency model, behind a process boundary.

SANA-FE (Boyle et al., "SANA-FE: Simulating Advanced Neuromorphic Architectures for Fast
Exploration", IEEE TCAD 44(8), 2025, doi:10.1109/TCAD.2025.3537971) simulates a spiking network on
an architecture file; its Loihi file (``sanafe/examples/loihi.yaml``) was calibrated against Loihi
silicon: energy within 12 % and latency within 25 % on three applications (the paper's abstract).
It is GPL-3 (snnpipe is MIT), so, as Lava, it is never imported here: it lives in its own virtual
environment and `run_sanafe` drives ``sanafe_runner.py`` (beside this module) there as a
subprocess, a JSON job in, a JSON answer out.

The environment's python is the ``python`` argument, the ``SNNPIPE_SANAFE_PYTHON`` variable, or
``~/.cache/snnpipe-sanafe/bin/python``; when none exists it is made there on first use with this
interpreter (the PyPI wheel ``sanafe==2.2.9`` is cp311 for Linux x86-64: ``python -m venv`` then
``pip install sanafe==2.2.9 numpy pyyaml``, yaml for its tutorial module; a minute, about 100 MB),
once however many processes ask, never half built (`sidecar.ensure_venv`), as the Lava environment.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from snnpipe.errors import SnnpipeError
from snnpipe.hw_targets.sidecar import build_venv, ensure_venv

SANAFE_VERSION = "2.2.9"
ENV_VARIABLE = "SNNPIPE_SANAFE_PYTHON"
RUNNER = Path(__file__).with_name("sanafe_runner.py")
_CHECK = f"import importlib.metadata as m, sys; sys.exit(0 if m.version('sanafe') == '{SANAFE_VERSION}' else 3)"


class SanafeUnavailableError(SnnpipeError):
    """No SANA-FE environment, and none can be made here: the message says why and what to do."""


class SanafeRunError(SnnpipeError):
    """SANA-FE ran and failed."""


def default_env_dir() -> Path:
    """Where snnpipe keeps its SANA-FE environment: ``~/.cache/snnpipe-sanafe``."""
    return Path.home() / ".cache" / "snnpipe-sanafe"


def _is_sanafe_python(python: Path) -> bool:
    if not python.is_file():
        return False
    try:
        return subprocess.run([str(python), "-c", _CHECK], capture_output=True, timeout=120).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def _create_env(env_dir: Path) -> None:
    print(f"creating the SANA-FE environment at {env_dir} (pip install sanafe=={SANAFE_VERSION})", file=sys.stderr,
          flush=True)
    build_venv(env_dir, sys.executable, [f"sanafe=={SANAFE_VERSION}", "numpy", "pyyaml"], SanafeUnavailableError,
               f"install sanafe=={SANAFE_VERSION} (a cp311 Linux wheel) in a Python 3.11 environment and set "
               f"{ENV_VARIABLE} to its python")


def sanafe_python(explicit: str | Path | None = None, create: bool = True) -> Path:
    """The python of a working SANA-FE environment (module docstring), made on first use if allowed.

    Raises:
        SanafeUnavailableError: the given python has no sanafe 2.2.9, or there is none and none can be built.
    """
    given = explicit or os.environ.get(ENV_VARIABLE)
    if given:
        python = Path(given).expanduser()
        if not _is_sanafe_python(python):
            raise SanafeUnavailableError(f"{python} has no sanafe {SANAFE_VERSION}; point {ENV_VARIABLE} at the "
                                         f"SANA-FE environment's python, or unset it to use {default_env_dir()}")
        return python
    env_dir = default_env_dir()
    python = env_dir / "bin" / "python"
    if _is_sanafe_python(python):
        return python
    if not create:
        raise SanafeUnavailableError(f"no SANA-FE environment at {env_dir}; run once with network access to PyPI "
                                     f"or set {ENV_VARIABLE}")
    return ensure_venv(env_dir, _is_sanafe_python, _create_env)


def _without_arrays(value: Any, arrays: dict[str, np.ndarray]) -> Any:
    """``value`` with each numpy array replaced by ``{"array": key}``, the array put in ``arrays``
    under that key: a network's millions of synapses travel in ``job.npz``, not as JSON lists."""
    if isinstance(value, np.ndarray):
        key = f"a{len(arrays)}"
        arrays[key] = value
        return {"array": key}
    if isinstance(value, dict):
        return {k: _without_arrays(v, arrays) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_without_arrays(v, arrays) for v in value]
    return value


def run_sanafe(job: dict[str, Any], python: str | Path | None = None, timeout: float = 3600.0) -> dict[str, Any]:
    """Run one job of ``sanafe_runner.py`` (its docstring lists them) and return its JSON answer;
    the job's numpy arrays travel beside it in ``job.npz``.

    Raises:
        SanafeUnavailableError: no SANA-FE environment (`sanafe_python`).
        SanafeRunError: the runner failed or ran past ``timeout`` seconds.
    """
    python = Path(python) if python is not None else sanafe_python()
    arrays: dict[str, np.ndarray] = {}
    plain = _without_arrays(job, arrays)
    with tempfile.TemporaryDirectory(prefix="snnpipe-sanafe-") as tmp:
        job_path, answer_path = Path(tmp) / "job.json", Path(tmp) / "answer.json"
        job_path.write_text(json.dumps(plain))
        np.savez(Path(tmp) / "job.npz", **arrays)
        try:
            done = subprocess.run([str(python), str(RUNNER), str(job_path), str(answer_path)], capture_output=True,
                                  text=True, timeout=timeout, cwd=tmp)
        except subprocess.TimeoutExpired:
            raise SanafeRunError(f"SANA-FE did not finish within {timeout:.0f} s; run fewer steps") from None
        if done.returncode != 0 or not answer_path.exists():
            lines = [line for line in done.stderr.strip().splitlines() if line.strip()]
            raise SanafeRunError(f"SANA-FE failed on job {job.get('job')!r} "
                                 f"({lines[-1] if lines else f'exit {done.returncode}'})")
        return json.loads(answer_path.read_text())
