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
from typing import Any, Callable

import numpy as np

from snnpipe.errors import SnnpipeError
from snnpipe.hw_targets.sidecar import build_venv, ensure_venv
from snnpipe.models import ir

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


def run_sanafe(job: dict[str, Any], python: str | Path | None = None, timeout: float = 3600.0) -> dict[str, Any]:
    """Run one job of ``sanafe_runner.py`` (its docstring lists them) and return its JSON answer.

    Raises:
        SanafeUnavailableError: no SANA-FE environment (`sanafe_python`).
        SanafeRunError: the runner failed or ran past ``timeout`` seconds.
    """
    python = Path(python) if python is not None else sanafe_python()
    with tempfile.TemporaryDirectory(prefix="snnpipe-sanafe-") as tmp:
        job_path, answer_path = Path(tmp) / "job.json", Path(tmp) / "answer.json"
        job_path.write_text(json.dumps(job))
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


# ---------------------------------------------------------------------------------------------
# The typed graph as a SANA-FE job: a chain of synapses and neurons, one mapper per node type
# ---------------------------------------------------------------------------------------------

def _hwc(shape: tuple[int, ...]) -> np.ndarray:
    """Index map from SANA-FE's channels-last neuron order to the graph's (C, H, W) order."""
    c, h, w = shape if len(shape) == 3 else (shape[0], 1, 1)
    return np.arange(c * h * w).reshape(c, h, w).transpose(1, 2, 0).ravel()


def _affine(node: ir.Affine, in_shape: tuple[int, ...], map_shape: tuple[int, ...]) -> dict[str, Any]:
    weights = node.weight[:, _hwc(map_shape)] if len(map_shape) == 3 else node.weight
    return {"kind": "dense", "weights": weights.T.tolist()}


def _conv2d(node: ir.Conv2d, in_shape: tuple[int, ...], map_shape: tuple[int, ...]) -> dict[str, Any]:
    if node.padding not in ((0, 0), "valid") or node.groups != 1 or node.dilation != (1, 1) \
            or node.stride[0] != node.stride[1]:
        raise SnnpipeError("SANA-FE's Conv2D takes no padding, groups or dilation and one stride: "
                           f"this conv has padding {node.padding}, groups {node.groups}, stride {node.stride}")
    return {"kind": "conv2d", "weights": node.weight.transpose(3, 2, 1, 0).tolist(), "stride": node.stride[0]}


#: IR synapse type -> its SANA-FE layer (weights in SANA-FE's channels-last order).
SANAFE_LAYERS: dict[type, Callable[..., dict[str, Any]]] = {ir.Affine: _affine, ir.Conv2d: _conv2d}


def graph_job(graph: ir.Graph, bias: np.ndarray, steps: int, cores: list[int]) -> dict[str, Any]:
    """The ``network`` job of a chain: input neurons driven by ``bias`` (one sample, the graph's
    input shape, in units of their threshold 1: a graded input integrated and fired), then one
    SANA-FE layer per synapse with the IF/LIF threshold of the neuron after it; ``cores``: per layer,
    the input first, how many Loihi cores it spreads over.

    Raises:
        SnnpipeError: a node SANA-FE's layers cannot hold (a pool, a residual add), named.
    """
    shapes = graph.shapes()
    input_shape = shapes[graph.input]
    c, h, w = input_shape if len(input_shape) == 3 else (input_shape[0], 1, 1)
    layers = [{"kind": "input2d", "width": w, "height": h, "channels": c, "threshold": 1.0,
               "bias": np.asarray(bias, dtype=float).reshape(input_shape if len(input_shape) == 3 else (c, 1, 1))
               .transpose(1, 2, 0).ravel().tolist()}]
    map_shape = input_shape
    for name in graph.order():
        node = graph.nodes[name]
        if len(graph.inputs(name)) > 1:
            raise SnnpipeError(f"node {name!r} sums several inputs: the SANA-FE job takes chains")
        if type(node) in SANAFE_LAYERS:
            layers.append(SANAFE_LAYERS[type(node)](node, shapes[graph.inputs(name)[0]], map_shape))
        elif isinstance(node, ir.CubaLIF):
            if not np.isscalar(node.threshold):
                raise SnnpipeError(f"node {name!r}: a per-neuron threshold; the SANA-FE job takes one per layer")
            layers[-1]["threshold"] = float(node.threshold)
            map_shape = shapes[name]
        elif isinstance(node, ir.Flatten):
            continue  # map_shape keeps the (C, H, W) before it: the dense weights are reordered from it
        elif not isinstance(node, (ir.Input, ir.Output)):
            raise SnnpipeError(f"node {name!r} ({type(node).__name__}): SANA-FE's layers are input, conv2d and "
                               "dense with LIF neurons")
    return {"job": "network", "steps": steps, "layers": layers, "cores": cores}
