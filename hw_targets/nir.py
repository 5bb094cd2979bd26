"""NIR (Neuromorphic Intermediate Representation, the ``nir`` package): export, read back, import.

Both directions are mapper tables over snnpipe's typed graph (`snnpipe.models.ir`), one per
direction. Export traces the model into the graph (`snnpipe.models.tracer.trace`, BatchNorm folded
first: NIR has none) and writes each node by `EXPORT_MAPPERS` (HDF5, ``nir.write``); import reads
each NIR node by `IMPORT_MAPPERS` into the graph, which `snnpipe.models.graph` builds into a model:

    graph node       NIR node
    Affine           Affine, or Linear where it has no bias
    Conv1d, Conv2d   Conv1d, Conv2d (a missing bias is written as zeros: NIR's always has one)
    AvgPool2d        AvgPool2d           SumPool2d     SumPool2d
    Flatten          Flatten (dims of one sample, no batch)
    CubaLIF          LIF where a_u = 1 (IF where also a_v = 0 and no leak), else CubaLIF
    CubaLI           LI where a_u = 1, else CubaLI       Integrator    I
    Threshold        Threshold           Scale         Scale          Delay    Delay (steps x dt)
    (sum of edges)   several edges into one node: a residual add

Anything else is refused by name: on export an `UnsupportedLayerError` naming the module path (the
tracer's) or the node, on import a `NirError` naming the node (a subgraph, for instance).

Residual networks export as they are: NIR is a graph. Nodes are named by module path
(``blocks.layer1.0.lif2``); the graph's ``metadata`` holds ``dt`` and ``producer``, and what a reader
needs to run the network on the data it was trained on: ``dataset``, ``data_seed``, ``mean`` and
``std`` (the direct encoding's normalization), ``timesteps`` and ``encoding`` (`pipeline.importer`
reads them back).

Loihi's timing (a model trained with ``--quantize loihi``, ``delay_shift``: every conv and linear
delivers at step t what it computed from its input at step t - 1, its bias alone at step 0, and a
sequence of T steps runs T + L steps, L zero steps appended) is a NIR ``Delay`` node of one step
(``delay = dt`` seconds, the unit of the time constants) in front of every Affine, Linear and Conv2d,
named ``<module path>.delay``: ``W x(t - 1) + b`` with x = 0 before the first step is the same bias
at step 0. Read back, such a graph imports with ``delay_shift`` and runs T + L steps. A residual
network in Loihi's timing also delays its shortcuts to the main branch's depth, which is refused
(export it with ``--target loihi``).

The neuron mapping. NIR's neurons are continuous-time (nir ``ir/neuron.py``)::

    CubaLIF:  tau_syn dI/dt = -I + w_in S        tau_mem dv/dt = (v_leak - v) + r I
    LIF:      tau dv/dt = (v_leak - v) + r I     IF: dv/dt = r I
    all:      spike when v > v_threshold, then v = v_reset

Integrated over one step of length dt by forward Euler, the current first and the voltage from the
new current (as snnTorch does in ``import_nir.py`` and Lava does on Loihi)::

    I[t] = (1 - dt/tau_syn) I[t-1] + (dt/tau_syn) w_in S[t]
    v[t] = (1 - dt/tau_mem) v[t-1] + (dt/tau_mem) (r I[t] + v_leak)

which is snnpipe's CUBA LIF (SPEC §2: u[t] = (1-a_u) u[t-1] + x[t], v[t] = (1-a_v) v[t-1] + u[t])
exactly when::

    a_u = dt / tau_syn,   a_v = dt / tau_mem,   w_in = tau_syn / dt,   r = tau_mem / dt,
    v_leak = 0,   v_reset = 0,   v_threshold = theta            (LIF: tau = dt / a_v, r = tau / dt;
                                                                  IF:  r = 1 / dt)

Export writes exactly that. Import inverts it for any gains: with g = (dt/tau_syn) w_in (dt/tau_mem) r
(LIF: g = (dt/tau) r; IF: g = dt r), dividing u by (dt/tau_syn) w_in and v by g gives the equations
above with theta = v_threshold / g and the same spikes (snnTorch's import divides its threshold the
same way). A gain within 1e-6 of 1 counts as 1, so float32 files round-trip to the same threshold.

Time step: ``dt = 1e-4`` by default, snnTorch's: its ``export_nir.py`` writes and its
``import_nir.py`` reads every time constant with ``dt = 1e-4`` hard-coded, so a file written with any
other dt would run with other decays there (with dt = 1 and a_v = 0.5, snnTorch reads beta = 1 - 5e-5
instead of 0.5). Our files also record dt in the graph's metadata, and import uses it; a file
without one (snnTorch's, for instance) is read with dt = 1e-4 unless the caller gives another.

The leak and reset voltages map the same way (v_leak and v_reset divided by g on import, as the
threshold), and the non-spiking LI and CubaLI as the graph's CubaLI: u = I / (a_u w_in), output v
with gain a_u w_in a_v r (``I``: gain = dt r). What NIR's neurons cannot say, and is refused rather
than approximated: a refractory period (``refractory_steps > 0``), the soft reset
(``reset="subtract"``), a decay of 0 in a CubaLIF (an infinite time constant), a neuron bias.
Per-neuron parameters are read into the graph as arrays (one value where all are the same); the
model builder refuses them by node and field (snnpipe's CUBA LIF has one set per layer), and so do
the targets that hold one per layer.

snnTorch: NIR's CubaLIF resets within the step, as snnpipe's (R = 0) and as snnTorch's
``Synaptic(reset_delay=False)``, which is what ``snntorch.import_nir`` builds. snnTorch's default
``Synaptic`` (reset_delay=True) holds the voltage one more step (snnpipe's R = 1), and its
``export_to_nir`` writes it as a plain CubaLIF all the same: such a network comes back with R = 0
(in snnpipe as in snnTorch's own import) unless imported with ``refractory_steps=1``.
``Leaky`` is the same with either reset_delay.

Verification (always, before the file appears): the written file is read with ``nir.read``,
imported back into snnpipe (`from_nir`), and run on the same input as the folded torch model:
outputs within ``ATOL`` (1e-5) and identical spikes at every neuron node, or the export fails and
leaves no file.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import nir
import numpy as np
import torch
from torch import Tensor, nn

from snnpipe import __version__
from snnpipe.arguments import PositiveFloat, PositiveInt
from snnpipe.errors import SnnpipeError
from snnpipe.hw_targets import (
    ExportError,
    ExportRequest,
    ExportResult,
    UnsupportedLayerError,
    atomic_path,
    register_exporter,
)
from snnpipe.hw_targets.folding import fold_batchnorm
from snnpipe.hw_targets.hdf5_file import ForeignHdf5Error, open_hdf5
from snnpipe.hw_targets.isolated import in_child
from snnpipe.models import SpikingModel, create_model, ir
from snnpipe.models.graph import chain, graph_model_args, layer_modules
from snnpipe.models.neurons import CubaLIF, NeuronParams
from snnpipe.models.tracer import TraceError, trace

TARGET = "nir"
#: snnTorch's time step (``export_nir.py``, ``import_nir.py``): time constants are dt / decay.
DEFAULT_DT = 1e-4
#: NIR file versions this module reads: those of the installed nir's major version and older.
READ_MAJOR = int(str(nir.version).split(".")[0])
ATOL = 1e-5
#: Gains this close to 1 are 1 (float32 files store r = tau/dt as 5.0000005 for 5).
GAIN_TOLERANCE = 1e-6
#: Seconds a NIR file may take to read (`read_nir`); longer means a damaged file HDF5 loops on.
READ_TIMEOUT = 60.0
#: What h5py, numpy and nir raise on a damaged file: h5py's OSError, KeyError (a damaged object
#: header) and RuntimeError (a damaged link), numpy's and nir's ValueError and TypeError, nir's asserts.
READ_ERRORS = (OSError, RuntimeError, KeyError, ValueError, TypeError, AssertionError)
REEXPORT = "re-export it from its source"
DAMAGED = f"the file is damaged or not a NIR graph snnpipe can read: {REEXPORT}"


class NirError(SnnpipeError):
    """A NIR file or graph snnpipe cannot read or import: one line naming the node and what to do."""


# ---------------------------------------------------------------------------------------------
# Export: the graph (`snnpipe.models.ir`) -> NIR nodes, one mapper per node type
# ---------------------------------------------------------------------------------------------

def _per_neuron(value: ir.Param, shape: tuple[int, ...]) -> np.ndarray:
    """A neuron parameter as NIR holds it: one value per neuron of ``shape``."""
    return np.array(np.broadcast_to(np.asarray(value, dtype=np.float64), shape))


def neuron_to_nir(params: NeuronParams | ir.CubaLIF, shape: tuple[int, ...], dt: float = DEFAULT_DT, path: str = "",
                  module: object = None) -> nir.NIRNode:
    """The NIR node of a CUBA LIF layer of ``shape`` (one sample): LIF, IF or CubaLIF.

    Raises:
        UnsupportedLayerError: refractory period, soft reset, a bias, or a CubaLIF with a decay of 0.
    """
    node = params if isinstance(params, ir.CubaLIF) else CubaLIF(params).ir_node()
    owner = module if module is not None else node
    if node.refractory_steps:
        raise UnsupportedLayerError(path, owner, TARGET, "NIR's neurons have no refractory period "
                                    f"(refractory_steps={node.refractory_steps})")
    if node.reset != "zero":
        raise UnsupportedLayerError(path, owner, TARGET, f"reset={node.reset!r}: NIR's neurons reset to v_reset; "
                                    "retrain with --reset zero, or export with --target onnx")
    if node.bias is not None and np.any(node.bias):
        raise UnsupportedLayerError(path, owner, TARGET, "NIR's neurons have no bias (fold it into the synapse before)")
    a_u, a_v = np.asarray(node.current_decay), np.asarray(node.voltage_decay)

    def full(value: ir.Param) -> np.ndarray:
        return _per_neuron(value, shape)

    common = {"v_threshold": full(node.threshold), "v_reset": full(node.v_reset)}
    if np.all(a_u == 1.0) and np.all(a_v == 0.0) and not np.any(node.v_leak):
        return nir.IF(r=full(1.0 / dt), **common)
    if np.any(a_u == 0.0) or np.any(a_v == 0.0):
        raise UnsupportedLayerError(path, owner, TARGET, "a decay of 0 is an infinite NIR time constant "
                                    f"(current_decay={node.current_decay}, voltage_decay={node.voltage_decay})")
    if np.all(a_u == 1.0):
        tau = dt / a_v
        return nir.LIF(tau=full(tau), r=full(tau / dt), v_leak=full(node.v_leak), **common)
    tau_syn, tau_mem = dt / a_u, dt / a_v
    return nir.CubaLIF(tau_syn=full(tau_syn), tau_mem=full(tau_mem), r=full(tau_mem / dt), v_leak=full(node.v_leak),
                       w_in=full(tau_syn / dt), **common)


def _linear(node: ir.Affine, in_shape, out_shape, dt, name) -> nir.NIRNode:
    weight = node.weight.astype(np.float32)
    if node.bias is None:
        return nir.Linear(weight=weight)
    return nir.Affine(weight=weight, bias=node.bias.astype(np.float32))


def _conv(node: ir.Conv2d, in_shape, out_shape, dt, name) -> nir.NIRNode:
    weight = node.weight.astype(np.float32)
    bias = (node.bias if node.bias is not None else np.zeros(weight.shape[0])).astype(np.float32)  # NIR's has one
    if isinstance(node, ir.Conv1d):
        return nir.Conv1d(input_shape=in_shape[1], weight=weight, stride=node.stride[0], dilation=node.dilation[0],
                          padding=node.padding if isinstance(node.padding, str) else node.padding[0],
                          groups=node.groups, bias=bias)
    return nir.Conv2d(input_shape=tuple(in_shape[1:]), weight=weight, stride=node.stride, padding=node.padding,
                      dilation=node.dilation, groups=node.groups, bias=bias)


def _flatten(node: ir.Flatten, in_shape, out_shape, dt, name) -> nir.NIRNode:
    return nir.Flatten(input_type={"input": np.array(in_shape)}, start_dim=node.start_dim, end_dim=node.end_dim)


def _pool(node: ir.AvgPool2d, in_shape, out_shape, dt, name) -> nir.NIRNode:
    kind = nir.SumPool2d if isinstance(node, ir.SumPool2d) else nir.AvgPool2d
    return kind(kernel_size=np.array(node.kernel_size), stride=np.array(node.stride), padding=np.array(node.padding))


def _cuba_lif(node: ir.CubaLIF, in_shape, out_shape, dt, name) -> nir.NIRNode:
    return neuron_to_nir(node, tuple(in_shape), dt, name)


def _cuba_li(node: ir.CubaLI, in_shape, out_shape, dt, name) -> nir.NIRNode:
    # u = I / (a_u w_in) with w_in = 1 / a_u, and r = gain / a_v: the gains cancel (module docstring)
    a_u, a_v = np.asarray(node.current_decay), np.asarray(node.voltage_decay)
    if np.any(a_u == 0.0) or np.any(a_v == 0.0):
        raise UnsupportedLayerError(name, node, TARGET, "a decay of 0 is an infinite NIR time constant "
                                    f"(current_decay={node.current_decay}, voltage_decay={node.voltage_decay})")
    if node.bias is not None and np.any(node.bias):
        raise UnsupportedLayerError(name, node, TARGET, "NIR's neurons have no bias (fold it into the synapse before)")
    shape = tuple(in_shape)
    tau_mem, r, v_leak = _per_neuron(dt / a_v, shape), _per_neuron(node.gain / a_v, shape), _per_neuron(node.v_leak, shape)
    if np.all(a_u == 1.0):
        return nir.LI(tau=tau_mem, r=r, v_leak=v_leak)
    return nir.CubaLI(tau_syn=_per_neuron(dt / a_u, shape), tau_mem=tau_mem, r=r, v_leak=v_leak,
                      w_in=_per_neuron(1.0 / a_u, shape))


Mapper = Callable[[Any, tuple, tuple, float, str], nir.NIRNode]
#: Node type -> its NIR node (``node, input shape, output shape, dt, name``); one sample's shapes.
EXPORT_MAPPERS: dict[type, Mapper] = {
    ir.Input: lambda node, i, o, dt, name: nir.Input(input_type={"input": np.array(node.shape)}),
    ir.Output: lambda node, i, o, dt, name: nir.Output(output_type={"output": np.array(node.shape)}),
    ir.Affine: _linear,
    ir.Conv1d: _conv,
    ir.Conv2d: _conv,
    ir.Flatten: _flatten,
    ir.AvgPool2d: _pool,
    ir.SumPool2d: _pool,
    ir.CubaLIF: _cuba_lif,
    ir.CubaLI: _cuba_li,
    ir.Integrator: lambda node, i, o, dt, name: nir.I(r=_per_neuron(np.asarray(node.gain) / dt, tuple(i))),
    ir.Threshold: lambda node, i, o, dt, name: nir.Threshold(threshold=_per_neuron(node.threshold, tuple(i))),
    ir.Scale: lambda node, i, o, dt, name: nir.Scale(scale=_per_neuron(node.scale, tuple(i))),
    ir.Delay: lambda node, i, o, dt, name: nir.Delay(delay=np.full(tuple(i), node.steps * float(dt))),
}


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0][:160] if text else type(err).__name__


def _brief(value: Any) -> str:
    """``repr(value)`` on one line, at most 80 characters."""
    text = " ".join(repr(value).split())
    return text if len(text) <= 80 else text[:77] + "..."


def graph_to_nir(graph: ir.Graph, dt: float = DEFAULT_DT, metadata: dict[str, Any] | None = None) -> nir.NIRGraph:
    """The NIR graph of ``graph``, node by node (`EXPORT_MAPPERS`), with its metadata and ``metadata``
    (plain values) in NIR's. A graph in Loihi's timing (metadata ``delay_shift``) gets a one-step
    Delay in front of every synapse, named ``<synapse>.delay`` (module docstring).

    Raises:
        UnsupportedLayerError: a node or neuron setting NIR cannot express, by name.
        ExportError: a residual graph in Loihi's timing.
    """
    shapes = graph.shapes()
    delayed = bool(graph.metadata.get("delay_shift"))
    if delayed and any(len(graph.inputs(name)) > 1 for name in graph.nodes):
        raise ExportError("this network runs in Loihi's timing (trained with --quantize loihi) and has residual "
                          "connections, whose shortcut delays the NIR export does not write: export it with "
                          "--target loihi, or train it without --quantize loihi")
    nodes: dict[str, nir.NIRNode] = {}
    edges: list[tuple[str, str]] = []
    for name in graph.nodes:
        node = graph.nodes[name]
        sources = graph.inputs(name)
        in_shape = shapes[sources[0]] if sources else shapes[name]
        mapper = EXPORT_MAPPERS.get(type(node))
        if mapper is None:
            raise UnsupportedLayerError(name, node, TARGET, "NIR export maps " + ", ".join(k.__name__ for k in EXPORT_MAPPERS))
        nodes[name] = mapper(node, in_shape, shapes[name], dt, name)
        if delayed and isinstance(node, ir.SYNAPSES):  # Loihi's timing: one step into every synapse
            nodes[f"{name}.delay"] = EXPORT_MAPPERS[ir.Delay](ir.Delay(1), in_shape, in_shape, dt, name)
            edges += [(source, f"{name}.delay") for source in sources] + [(f"{name}.delay", name)]
        else:
            edges += [(source, name) for source in sources]
    plain = {k: v for k, v in graph.metadata.items() if k != "delay_shift"}
    metadata = {**plain, **(metadata or {}), "dt": float(dt), "producer": f"snnpipe {__version__}"}
    try:
        return nir.NIRGraph(nodes=nodes, edges=edges, metadata=metadata)
    except Exception as err:  # nir's type check: a shape that does not line up
        raise ExportError(f"the NIR graph does not type-check ({_first_line(err)})") from None


def to_nir(model: SpikingModel, input_shape: tuple[int, ...], dt: float = DEFAULT_DT,
           metadata: dict[str, Any] | None = None) -> nir.NIRGraph:
    """The NIR graph of ``model`` (BatchNorm already folded), one sample of ``input_shape``, with
    ``metadata`` (plain values: str, int, float, lists of them) in the graph's.

    Raises:
        UnsupportedLayerError: a module, function or neuron setting NIR cannot express.
        ExportError: a network in Loihi's timing that is not a chain (module docstring).
    """
    try:
        graph = trace(model, input_shape)
    except TraceError as err:
        raise UnsupportedLayerError(err.path, err.module, TARGET, err.reason) from None
    return graph_to_nir(graph, dt, metadata)


# ---------------------------------------------------------------------------------------------
# Import: NIR nodes -> the graph, one mapper per NIR node type
# ---------------------------------------------------------------------------------------------

def _values(name: str, node: object, key: str, ndim: int | None = None) -> np.ndarray:
    """``node.<key>`` as a non-empty finite float array (of ``ndim`` dimensions), else NirError."""
    array = np.asarray(getattr(node, key, None))
    if array.dtype.kind == "c":  # numpy's cast to float would drop the imaginary part
        raise NirError(f"NIR node {name!r} ({type(node).__name__}): {key} is complex ({array.dtype}); snnpipe's "
                       f"weights and neuron parameters are real: {REEXPORT}")
    if array.dtype.kind not in "fiu" or array.size == 0 or (ndim is not None and array.ndim != ndim) \
            or not np.all(np.isfinite(array)):
        what = f"{ndim}-D " if ndim is not None else ""
        raise NirError(f"NIR node {name!r} ({type(node).__name__}): {key} is not a finite {what}array "
                       f"({array.dtype} of shape {array.shape}); {DAMAGED}")
    return array.astype(np.float64)


def _one_value(array: np.ndarray) -> ir.Param:
    """One float where every neuron has the same value (to float32 precision), else the array."""
    flat = array.ravel()
    return float(flat[0]) if np.allclose(flat, flat[0], rtol=1e-6, atol=0.0) else array


def _decay(name: str, node: object, key: str, tau: np.ndarray, dt: float) -> np.ndarray:
    with np.errstate(divide="ignore"):
        decay = np.where(tau > 0, dt / np.where(tau > 0, tau, 1.0), np.inf)
    decay = np.where((decay > 1.0) & (decay <= 1.0 + 1e-9), 1.0, decay)  # tau written as dt in float32
    if not np.all((decay > 0.0) & (decay <= 1.0)):
        bad = float(tau.ravel()[np.argmax(~((decay > 0.0) & (decay <= 1.0)).ravel())])
        raise NirError(
            f"NIR node {name!r} ({type(node).__name__}): {key}={bad:g} gives decay dt/{key} = {dt / bad if bad else math.inf:g} "
            f"with dt={dt:g}; it must lie in (0, 1]: pass the file's dt (--dt)"
        )
    return decay


def _gain(name: str, node: object, gain: np.ndarray) -> np.ndarray:
    gain = np.where(np.abs(gain - 1.0) <= GAIN_TOLERANCE, 1.0, gain)
    if not np.all(gain > 0):
        raise NirError(f"NIR node {name!r} ({type(node).__name__}) has input gain {float(gain.min()):g}; it must be > 0")
    return gain


def neuron_from_nir(name: str, node: nir.NIRNode, dt: float = DEFAULT_DT) -> ir.CubaLIF:
    """The graph's `ir.CubaLIF` of a NIR LIF, IF or CubaLIF node: the module docstring's inverse,
    the voltage divided by the input gain g (so the threshold, v_leak and v_reset are)."""
    def get(key: str) -> np.ndarray:
        return _values(name, node, key)

    leak = get("v_leak") if getattr(node, "v_leak", None) is not None else np.zeros(1)
    reset = get("v_reset") if getattr(node, "v_reset", None) is not None else np.zeros(1)
    if isinstance(node, nir.CubaLIF):
        a_u = _decay(name, node, "tau_syn", get("tau_syn"), dt)
        a_v = _decay(name, node, "tau_mem", get("tau_mem"), dt)
        gain = a_u * get("w_in") * a_v * get("r")
    elif isinstance(node, nir.LIF):
        a_u, a_v = np.ones(1), _decay(name, node, "tau", get("tau"), dt)
        gain = a_v * get("r")
    else:
        a_u, a_v, gain = np.ones(1), np.zeros(1), dt * get("r")
    gain = _gain(name, node, gain)
    try:
        return ir.CubaLIF(_one_value(a_u), _one_value(a_v), _one_value(get("v_threshold") / gain),
                          v_leak=_one_value(leak / gain), v_reset=_one_value(reset / gain))
    except ValueError as err:
        raise NirError(f"NIR node {name!r} ({type(node).__name__}): {err}; {DAMAGED}") from None


def _affine(name: str, node: nir.Affine, dt: float) -> ir.Node:
    weight = _values(name, node, "weight")
    if weight.ndim != 2:
        raise NirError(f"NIR node {name!r} ({type(node).__name__}) has a {weight.ndim}-D weight; snnpipe imports 2-D")
    return ir.Affine(weight, _values(name, node, "bias", 1) if isinstance(node, nir.Affine) else None)


def _conv_from(name: str, node: nir.Conv2d, dt: float) -> ir.Node:
    one = isinstance(node, nir.Conv1d)
    weight = _values(name, node, "weight", 3 if one else 4)
    bias = None if node.bias is None else _values(name, node, "bias").reshape(-1)
    return (ir.Conv1d if one else ir.Conv2d)(weight, bias, node.stride, node.padding, node.dilation, node.groups)


def _pool_from(name: str, node: nir.AvgPool2d, dt: float) -> ir.Node:
    kind = ir.SumPool2d if isinstance(node, nir.SumPool2d) else ir.AvgPool2d
    return kind(node.kernel_size, node.stride, node.padding)


def _delay_from(name: str, node: nir.Delay, dt: float) -> ir.Node:
    delay = _values(name, node, "delay")
    steps = _one_value(delay / dt)
    if isinstance(steps, np.ndarray) or abs(steps - round(steps)) > GAIN_TOLERANCE * max(1.0, steps) or round(steps) < 1:
        raise NirError(f"NIR node {name!r} (Delay) delays {delay.min():g} .. {delay.max():g} s; snnpipe imports a delay "
                       f"of whole steps (dt = {dt:g} s), the same for every neuron; one step before every Affine, "
                       "Linear and Conv2d is Loihi's timing")
    return ir.Delay(int(round(steps)))


def _leaky_from(name: str, node: nir.LI, dt: float) -> ir.Node:
    """NIR's LI and CubaLI as `ir.CubaLI`: u = I / (a_u w_in), the output v with gain a_u w_in a_v r."""
    if isinstance(node, nir.CubaLI):
        a_u = _decay(name, node, "tau_syn", _values(name, node, "tau_syn"), dt)
        a_v = _decay(name, node, "tau_mem", _values(name, node, "tau_mem"), dt)
        gain = a_u * _values(name, node, "w_in") * a_v * _values(name, node, "r")
    else:
        a_u, a_v = np.ones(1), _decay(name, node, "tau", _values(name, node, "tau"), dt)
        gain = a_v * _values(name, node, "r")
    leak = _values(name, node, "v_leak") if node.v_leak is not None else np.zeros(1)
    return ir.CubaLI(_one_value(a_u), _one_value(a_v), _one_value(gain), _one_value(leak))


ImportMapper = Callable[[str, Any, float], ir.Node]
#: NIR node type -> the graph's node (``name, node, dt``). Input and Output are the graph's ends
#: (`from_nir` reads their shapes); any other type is refused by name.
IMPORT_MAPPERS: dict[type, ImportMapper] = {
    nir.Affine: _affine,
    nir.Linear: _affine,
    nir.Conv1d: _conv_from,
    nir.Conv2d: _conv_from,
    nir.AvgPool2d: _pool_from,
    nir.SumPool2d: _pool_from,
    nir.Flatten: lambda name, node, dt: ir.Flatten(node.start_dim, node.end_dim),
    nir.LIF: neuron_from_nir,
    nir.CubaLIF: neuron_from_nir,
    nir.IF: neuron_from_nir,
    nir.LI: _leaky_from,
    nir.CubaLI: _leaky_from,
    nir.I: lambda name, node, dt: ir.Integrator(_one_value(dt * _values(name, node, "r"))),
    nir.Threshold: lambda name, node, dt: ir.Threshold(_one_value(_values(name, node, "threshold"))),
    nir.Scale: lambda name, node, dt: ir.Scale(_one_value(_values(name, node, "scale"))),
    nir.Delay: _delay_from,
}
#: What the import reads, for messages.
IMPORTABLE = ("Input", "Output", *(kind.__name__ for kind in IMPORT_MAPPERS))


def _node_from_nir(name: str, node: nir.NIRNode, dt: float) -> ir.Node:
    mapper = IMPORT_MAPPERS.get(type(node))
    if mapper is None:
        extra = " (a subgraph: recurrent layers are not supported)" if isinstance(node, nir.NIRGraph) else ""
        raise NirError(f"NIR node {name!r} ({type(node).__name__}){extra} cannot be imported into snnpipe; "
                       f"supported: {', '.join(IMPORTABLE)}")
    try:
        return mapper(name, node, dt)
    except ValueError as err:
        if isinstance(err, NirError):
            raise
        raise NirError(f"NIR node {name!r} ({type(node).__name__}): {err}; {DAMAGED}") from None


def _shape(types: dict | None, key: str) -> tuple[int, ...] | None:
    value = types.get(key) if isinstance(types, dict) else None
    if value is None:
        return None
    array = np.asarray(value).ravel()
    if array.dtype.kind not in "fiu" or not np.all(np.isfinite(array)) or np.any(array != np.round(array)) \
            or np.any(array < 1):
        raise NirError(f"the NIR graph has an {key} shape {_brief(value)} that is not positive integers; {DAMAGED}")
    return tuple(int(v) for v in array)


def io_shapes(graph: nir.NIRGraph) -> tuple[tuple[int, ...] | None, tuple[int, ...] | None]:
    """Shapes of one sample at the graph's Input and Output nodes (None where not exactly one)."""
    inputs = [n for n in graph.nodes.values() if isinstance(n, nir.Input)]
    outputs = [n for n in graph.nodes.values() if isinstance(n, nir.Output)]
    return (_shape(inputs[0].input_type, "input") if len(inputs) == 1 else None,
            _shape(outputs[0].output_type, "output") if len(outputs) == 1 else None)


# ---------------------------------------------------------------------------------------------
# Reading and import: a NIR file -> the graph -> a "sequential" or "graph" model (snnpipe.models.graph)
# ---------------------------------------------------------------------------------------------

def read_nir(path: str | Path) -> tuple[nir.NIRGraph, str]:
    """Read a NIR file with ``nir.read`` after checking that it is one, of a version this reads.

    The reading runs in a child process where the OS can fork: the HDF5 library loops forever or
    crashes on some damaged files (a flipped byte in a global heap), and that must not take snnpipe
    with it. A child that crashes or runs past `READ_TIMEOUT` seconds means a damaged file.

    Raises:
        NirError: missing, not HDF5, no or unknown version, damaged, or a graph nir cannot build.
    """
    path = Path(path)
    if not path.is_file():
        raise NirError(f"NIR file {path} does not exist")
    return in_child(_read, path, timeout=READ_TIMEOUT,
                    failure=lambda reason: NirError(f"{path} is a damaged NIR file: {reason}; {REEXPORT}"))


def _read(path: Path) -> tuple[nir.NIRGraph, str]:
    try:
        with open_hdf5(path) as handle:
            raw = handle["version"][()] if "version" in handle else None
            has_node = "node" in handle
    except OSError as err:
        raise NirError(f"{path} is not a NIR file: it is not readable HDF5 ({_first_line(err)})") from None
    except ForeignHdf5Error as err:
        raise NirError(f"{path} is not a NIR file snnpipe reads: {err}") from None
    except READ_ERRORS as err:
        raise NirError(f"{path} is a damaged NIR file ({type(err).__name__}: {_first_line(err)}); {REEXPORT}") from None
    if raw is None or not has_node:
        raise NirError(f"{path} is not a NIR file: it has no {'version' if raw is None else 'node'} entry")
    if not isinstance(raw, (bytes, str)):
        raise NirError(f"{path} is a damaged NIR file: its version is {_brief(raw)}, not a string; {REEXPORT}")
    version = raw.decode("utf8", "replace") if isinstance(raw, bytes) else raw
    major = version.split(".")[0]
    if not major.isdigit() or int(major) > READ_MAJOR:
        raise NirError(
            f"{path} is NIR version {version!r}; this snnpipe reads NIR up to {READ_MAJOR}.x "
            f"(nir {nir.version} installed): upgrade nir and snnpipe, or re-export the file"
        )
    try:
        graph = nir.read(path, type_check=False)  # the import checks shapes itself, naming the node (ir.Graph.shapes)
    except READ_ERRORS as err:
        raise NirError(f"{path} is a damaged or malformed NIR graph ({type(err).__name__}: {_first_line(err)}); "
                       f"{REEXPORT}") from None
    if not isinstance(graph, nir.NIRGraph):
        raise NirError(f"{path} holds a single {type(graph).__name__} node, not a NIR graph")
    return graph, version


@dataclass
class ImportedNetwork:
    """A NIR graph as an snnpipe model: what a checkpoint needs besides data and timesteps.

    Attributes:
        graph: the network in the typed graph, weights and the file's metadata included.
        input_shape: one sample, (C, H, W).
        num_classes: size of the output.
        dt: the time step the time constants were read with.
        neuron: the first neuron layer's parameters (the checkpoint's default).
    """

    graph: ir.Graph
    input_shape: tuple[int, int, int]
    num_classes: int
    dt: float
    neuron: NeuronParams = field(default_factory=NeuronParams)

    @property
    def model_name(self) -> str:
        """``sequential`` (a chain) or ``graph`` (`snnpipe.models.graph`)."""
        return graph_model_args(self.graph)[0]

    @property
    def model_args(self) -> dict[str, Any]:
        """The graph's structure (its weights go to the state dict), and ``delay_shift``."""
        return graph_model_args(self.graph)[1]

    def build(self, neuron: NeuronParams | None = None, spiking: bool = True) -> SpikingModel:
        """The model with the imported weights."""
        args = {**self.model_args, "graph": self.graph}
        model = create_model(self.model_name, input_shape=self.input_shape, num_classes=self.num_classes,
                             neuron=neuron or self.neuron, spiking=spiking, **args)
        return model.eval()


def from_nir(graph: nir.NIRGraph, dt: float | None = None, input_shape: tuple[int, ...] | None = None,
             refractory_steps: int = 0) -> ImportedNetwork:
    """A NIR graph as an snnpipe network: each node by `IMPORT_MAPPERS` into the graph (`ir.Graph`),
    with the file's metadata; one-step Delays in front of every synapse become Loihi's timing.

    Args:
        graph: as read by `read_nir`.
        dt: the time step of the file; default the graph's metadata ``dt``, else `DEFAULT_DT`.
        input_shape: (C, H, W) to give a graph whose input is flat (N,): a Flatten goes first.
        refractory_steps: given to every CubaLIF (1 reproduces snnTorch's default ``Synaptic``).

    Raises:
        NirError: an unsupported node or graph; the message names the node.
    """
    metadata = dict(graph.metadata) if isinstance(graph.metadata, dict) else {}
    if dt is None and "dt" in metadata:
        try:
            dt = float(np.asarray(metadata["dt"]))
        except (TypeError, ValueError):
            raise NirError(f"the NIR graph's metadata dt {_brief(metadata['dt'])} is not a number; {DAMAGED}") from None
    dt = DEFAULT_DT if dt is None else dt
    if not 0 < dt < math.inf:
        raise NirError(f"dt={dt} is out of range: it must be > 0 and finite")
    for edge in graph.edges:
        if not isinstance(edge, (tuple, list)) or len(edge) != 2 or any(end not in graph.nodes for end in edge):
            raise NirError(f"the NIR graph has an edge {_brief(edge)} that does not join two of its nodes; {DAMAGED}")
    inputs = [k for k, n in graph.nodes.items() if isinstance(n, nir.Input)]
    outputs = [k for k, n in graph.nodes.items() if isinstance(n, nir.Output)]
    if len(inputs) != 1 or len(outputs) != 1:
        raise NirError(f"the NIR graph has {len(inputs)} inputs and {len(outputs)} outputs; snnpipe imports one of each")
    graph_input = _shape(graph.nodes[inputs[0]].input_type, "input")
    shape = _input_shape(graph_input, input_shape)
    out_shape = _shape(graph.nodes[outputs[0]].output_type, "output")
    rename = {inputs[0]: "input", outputs[0]: "output"}
    if {"input", "output"} & (set(graph.nodes) - set(rename)):
        raise NirError("the NIR graph names an inner node 'input' or 'output'; rename it")
    edges = [(rename.get(a, a), rename.get(b, b)) for a, b in graph.edges]
    nodes: dict[str, ir.Node] = {"input": ir.Input(shape)}
    for name, node in graph.nodes.items():
        if name not in rename:
            nodes[name] = _node_from_nir(name, node, dt)
            if isinstance(node, nir.CubaLIF) and refractory_steps:
                nodes[name] = dataclasses.replace(nodes[name], refractory_steps=int(refractory_steps))
    if graph_input is not None and len(graph_input) == 1 and len(shape) == 3:
        nodes["input.flatten"] = ir.Flatten()
        edges = [("input.flatten", b) if a == "input" else (a, b) for a, b in edges] + [("input", "input.flatten")]
    if out_shape is None or len(out_shape) != 1 or out_shape[0] < 2:
        raise NirError(f"the NIR graph outputs shape {out_shape}; snnpipe imports a network with a flat output of >= 2 values")
    nodes["output"] = ir.Output(out_shape)
    plain = {k: v.tolist() if isinstance(v, np.ndarray) else v for k, v in metadata.items()}
    try:
        imported = _loihi_timing(ir.Graph(nodes, edges, plain))
        imported.shapes()
    except ValueError as err:
        if isinstance(err, NirError):
            raise
        raise NirError(f"the NIR graph does not describe a network snnpipe can build: {err}") from None
    first = next((node for node in imported.nodes.values() if isinstance(node, ir.CubaLIF)), None)
    per_neuron = first is not None and any(isinstance(getattr(first, key), np.ndarray)
                                           for key in ("current_decay", "voltage_decay", "threshold"))
    try:
        neuron = NeuronParams() if first is None or per_neuron else NeuronParams(
            current_decay=first.current_decay, voltage_decay=first.voltage_decay, threshold=first.threshold,
            refractory_steps=first.refractory_steps)
        network = ImportedNetwork(imported, shape, out_shape[0], dt, neuron)
        network.build()
    except SnnpipeError as err:
        raise NirError(f"the NIR graph does not describe a network snnpipe can build: {err}") from None
    return network


def _loihi_timing(graph: ir.Graph) -> ir.Graph:
    """``graph`` with its Delay nodes cut out and metadata ``delay_shift``, where the Delays are
    Loihi's timing (module docstring): one step in front of each synapse of a chain and nowhere
    else; NirError where the Delays are there but not so. A graph without Delays as it is."""
    delays = [name for name, node in graph.nodes.items() if isinstance(node, ir.Delay)]
    if not delays:
        return graph
    for a, b in graph.recurrent_edges():
        raise NirError(f"the NIR graph has a recurrent edge {a!r} -> {b!r}: snnpipe builds feed-forward graphs "
                       "(a Delay here is Loihi's timing only)")
    edges = list(graph.edges)
    delayed = set()
    for delay in delays:
        if graph.nodes[delay].steps != 1:
            raise NirError(f"NIR node {delay!r} (Delay) delays {graph.nodes[delay].steps} steps; snnpipe imports a delay "
                           "of one step before every Affine, Linear and Conv2d (Loihi's timing)")
        before, after = graph.inputs(delay), graph.outputs(delay)
        if len(before) != 1 or len(after) != 1 or not isinstance(graph.nodes[after[0]], ir.SYNAPSES):
            raise NirError(f"NIR node {delay!r} (Delay) does not lead from one node into one Affine, Linear or Conv2d; "
                           "snnpipe imports Loihi's timing: a one-step Delay in front of each of them")
        delayed.add(after[0])
        edges = [e for e in edges if delay not in e] + [(before[0], after[0])]
    synapses = {name for name, node in graph.nodes.items() if isinstance(node, ir.SYNAPSES)}
    if delayed != synapses:
        raise NirError(f"the NIR graph delays {len(delayed)} of its {len(synapses)} Affine, Linear and Conv2d nodes "
                       f"(not {', '.join(sorted(synapses - delayed)[:3])}); snnpipe imports Loihi's timing: a one-step "
                       "Delay in front of each of them")
    nodes = {name: node for name, node in graph.nodes.items() if name not in delays}
    stripped = ir.Graph(nodes, edges, {**graph.metadata, "delay_shift": True})
    if chain(stripped) is None:
        raise NirError(f"the NIR graph has Delay nodes ({delays[0]} ...) and is not a chain; snnpipe imports "
                       "Loihi's timing in a chain of layers only")
    return stripped


def _input_shape(graph_input: tuple[int, ...] | None, given: tuple[int, ...] | None) -> tuple[int, int, int]:
    if graph_input is None:
        raise NirError("the NIR graph's Input node has no shape")
    if len(graph_input) == 3:
        if given is not None and tuple(given) != graph_input:
            raise NirError(f"the NIR graph takes input {graph_input}, not the {tuple(given)} given")
        return graph_input  # type: ignore[return-value]
    if len(graph_input) == 1:
        if given is None:
            raise NirError(f"the NIR graph takes flat input of {graph_input[0]} values; give the image shape (--input-shape C,H,W)")
        if len(given) != 3 or math.prod(given) != graph_input[0]:
            raise NirError(f"input shape {tuple(given)} does not hold the graph's {graph_input[0]} input values")
        return tuple(int(v) for v in given)  # type: ignore[return-value]
    raise NirError(f"the NIR graph takes input of shape {graph_input}; snnpipe imports (C, H, W) or flat input")


# ---------------------------------------------------------------------------------------------
# Verification and the exporter
# ---------------------------------------------------------------------------------------------

def run_recording(model: SpikingModel, neurons: dict[str, nn.Module], x: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
    """``model(x)`` from rest with the spikes of each named neuron module, each (T, B, ...)."""
    recorded: dict[str, list[Tensor]] = {name: [] for name in neurons}
    handles = [module.register_forward_hook(lambda _m, _i, out, name=name: recorded[name].append(out.detach().clone()))
               for name, module in neurons.items()]
    try:
        with torch.no_grad():
            out = model(x)
    finally:
        for handle in handles:
            handle.remove()
    return out, {name: torch.stack(values) for name, values in recorded.items()}


def compare(reference: SpikingModel, reference_neurons: dict[str, nn.Module], other: SpikingModel,
            other_neurons: dict[str, nn.Module], x: Tensor) -> dict[str, Any]:
    """Max |output difference| and spike mismatches of two models on ``x``, neuron by neuron name."""
    if set(reference_neurons) != set(other_neurons):
        missing = sorted(set(reference_neurons) ^ set(other_neurons))
        raise ExportError(f"the NIR graph read back has other neuron nodes than the model ({', '.join(missing[:3])})")
    want_out, want = run_recording(reference, reference_neurons, x)
    got_out, got = run_recording(other, other_neurons, x)
    mismatched = sum(int((want[n] != got[n]).sum()) for n in want)
    return {"max_abs_diff": float((want_out - got_out).abs().max()), "spikes_compared": int(sum(s.sum() for s in want.values())),
            "spikes_mismatched": mismatched}


def _neurons(model: nn.Module) -> dict[str, nn.Module]:
    """The CUBA LIF layers by module path: the names of their graph nodes (`snnpipe.models.tracer`)."""
    return {name: m for name, m in model.named_modules() if isinstance(m, CubaLIF)}


def _sample(request: ExportRequest, samples: int) -> Tensor:
    if request.batches is not None:
        for x, _ in request.batches():
            return x[:, :samples].float()
    return torch.rand(request.timesteps, samples, *request.input_shape)


@dataclass
class NirOptions:
    """Options of ``--target nir``.

    Attributes:
        dt: seconds per step of the time constants written (`DEFAULT_DT`, snnTorch's).
        verify_samples: test inputs run through the file read back, beside the torch model.
    """

    dt: PositiveFloat = field(default=DEFAULT_DT, metadata={"help": f"Seconds per step of the time constants (default {DEFAULT_DT:g})"})
    verify_samples: PositiveInt = field(default=8, metadata={"help": "Test inputs the verification runs (default 8)"})


@register_exporter(TARGET, ".nir", NirOptions)
def export_nir(request: ExportRequest) -> ExportResult:
    """Fold BatchNorm, write the NIR graph, read it back and check it against the torch model."""
    options = request.options or NirOptions()
    dt = options.dt
    folded = fold_batchnorm(request.model).eval()
    graph = to_nir(folded, tuple(request.input_shape), dt,
                   {**request.metadata, "timesteps": request.timesteps, "encoding": request.encoding})
    x = _sample(request, options.verify_samples)
    reference_neurons = _neurons(folded)
    out = Path(request.out)
    with atomic_path(out, suffix=".nir") as tmp:
        # in a child: h5py has crashed the process writing onto a nearly full disk
        in_child(nir.write, tmp, graph, timeout=READ_TIMEOUT, doing="writing",
                 failure=lambda reason: OSError(f"writing {out} failed: {reason}"))
        read_back, version = read_nir(tmp)
        imported = from_nir(read_back)
        model = imported.build()
        modules = layer_modules(model)
        neurons = {name: modules[name] for name in modules if isinstance(modules[name], CubaLIF)}
        check = compare(folded, reference_neurons, model, neurons, x)
        if check["max_abs_diff"] > ATOL or check["spikes_mismatched"]:
            raise ExportError(
                f"the NIR file read back disagrees with the model: max |diff| {check['max_abs_diff']:.3g} "
                f"(allowed {ATOL}), {check['spikes_mismatched']} spikes differ"
            )
        unfolded = compare(request.model.eval(), _neurons(request.model), folded, reference_neurons, x)
        size = tmp.stat().st_size
    report = {
        "nir_version": version, "dt": dt, "nodes": len(graph.nodes), "edges": len(graph.edges),
        "neuron_nodes": len(reference_neurons), "read_back_as": imported.model_name, "timesteps": request.timesteps,
        "encoding": request.encoding, "file_bytes": size, "verified": check,
        "batchnorm_folding": {"max_abs_diff": unfolded["max_abs_diff"], "spikes_mismatched": unfolded["spikes_mismatched"]},
    }
    return ExportResult(TARGET, out, report)
