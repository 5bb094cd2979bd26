"""NIR (Neuromorphic Intermediate Representation, the ``nir`` package): export, read back, import.

Export writes the SNN as a NIR graph (HDF5, ``nir.write``), BatchNorm folded first (NIR has none).
Node per module (`EXPORT_MAPPERS`; anything else raises `UnsupportedLayerError` naming its path):

    nn.Linear            Affine (with bias) or Linear
    nn.Conv2d            Conv2d (a missing bias is written as zeros: NIR's Conv2d always has one)
    nn.Flatten           Flatten (NIR's dims leave out the batch: start_dim - 1)
    nn.AvgPool2d         AvgPool2d; with divisor_override=1 (a sum over the window) SumPool2d
    nn.AdaptiveAvgPool2d AvgPool2d with kernel = stride = input / output size (sizes must divide)
    CubaLIF              LIF where a_u = 1 (IF where also a_v = 0), else CubaLIF
    nn.Identity, Dropout, residual add: no node; a node's input is the sum of its incoming edges,
                         so ``a + b`` becomes two edges into the next node.

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

What NIR's neurons cannot say, and is refused rather than approximated: a refractory period
(``refractory_steps > 0``), the soft reset (``reset="subtract"``), a decay of 0 in a CubaLIF (an infinite time constant), per-neuron time
constants or thresholds on import (snnpipe's CUBA LIF has one set per layer), ``v_leak != 0`` and
``v_reset != 0``.

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

import math
import operator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import nir
import numpy as np
import torch
from torch import Tensor, fx, nn

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
from snnpipe.models import SpikingModel, create_model
from snnpipe.models.graph import layer_modules, load_layer_weights
from snnpipe.models.neurons import CubaLIF, Neuron, NeuronParams, ReLU

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
IMPORTABLE = ("Input", "Output", "Affine", "Linear", "Conv2d", "Flatten", "AvgPool2d", "SumPool2d",
              "LIF", "CubaLIF", "IF", "Delay")


class NirError(SnnpipeError):
    """A NIR file or graph snnpipe cannot read or import: one line naming the node and what to do."""


# ---------------------------------------------------------------------------------------------
# The neuron mapping (module docstring)
# ---------------------------------------------------------------------------------------------

def neuron_to_nir(params: NeuronParams, shape: tuple[int, ...], dt: float = DEFAULT_DT, path: str = "",
                  module: object = None) -> nir.NIRNode:
    """The NIR node of a CUBA LIF layer of ``shape`` (one sample): LIF, IF or CubaLIF.

    Raises:
        UnsupportedLayerError: refractory period, or a CubaLIF with a decay of 0.
    """
    a_u, a_v, theta = params.current_decay, params.voltage_decay, params.threshold
    owner = module if module is not None else params
    if params.refractory_steps:
        raise UnsupportedLayerError(path, owner, TARGET, "NIR's neurons have no refractory period "
                                    f"(refractory_steps={params.refractory_steps})")
    if params.reset != "zero":
        raise UnsupportedLayerError(path, owner, TARGET, f"reset={params.reset!r}: NIR's neurons reset to v_reset; "
                                    "retrain with --reset zero, or export with --target onnx")

    def full(value: float) -> np.ndarray:
        return np.full(shape, value, dtype=np.float64)

    if a_u == 1.0 and a_v == 0.0:
        return nir.IF(r=full(1.0 / dt), v_threshold=full(theta), v_reset=full(0.0))
    if a_u == 1.0:
        tau = dt / a_v
        return nir.LIF(tau=full(tau), r=full(tau / dt), v_leak=full(0.0), v_threshold=full(theta), v_reset=full(0.0))
    if a_u == 0.0 or a_v == 0.0:
        raise UnsupportedLayerError(path, owner, TARGET, "a decay of 0 is an infinite NIR time constant "
                                    f"(current_decay={a_u}, voltage_decay={a_v})")
    tau_syn, tau_mem = dt / a_u, dt / a_v
    return nir.CubaLIF(tau_syn=full(tau_syn), tau_mem=full(tau_mem), r=full(tau_mem / dt), v_leak=full(0.0),
                       v_threshold=full(theta), v_reset=full(0.0), w_in=full(tau_syn / dt))


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


def _uniform(name: str, node: object, key: str) -> float:
    array = _values(name, node, key).ravel()
    if not np.allclose(array, array[0], rtol=1e-6, atol=0.0):
        raise NirError(
            f"NIR node {name!r} ({type(node).__name__}) has per-neuron {key} ({array.min():g} .. {array.max():g}); "
            "snnpipe's CUBA LIF takes one value per layer"
        )
    return float(array[0])


def _decay(name: str, node: object, key: str, tau: float, dt: float) -> float:
    decay = dt / tau if tau > 0 else math.inf
    if 1.0 < decay <= 1.0 + 1e-9:
        decay = 1.0  # tau written as dt in float32
    if not 0.0 < decay <= 1.0:
        raise NirError(
            f"NIR node {name!r} ({type(node).__name__}): {key}={tau:g} gives decay dt/{key} = {decay:g} with dt={dt:g}; "
            "it must lie in (0, 1]: pass the file's dt (--dt)"
        )
    return decay


def neuron_from_nir(name: str, node: nir.NIRNode, dt: float = DEFAULT_DT) -> dict[str, Any]:
    """The ``cuba_lif`` layer dict (`snnpipe.models.graph`) of a NIR LIF, IF or CubaLIF node."""
    def get(key: str) -> float:
        return _uniform(name, node, key)

    for key in ("v_leak", "v_reset"):
        if hasattr(node, key) and getattr(node, key) is not None and get(key) != 0.0:
            raise NirError(f"NIR node {name!r} ({type(node).__name__}) has {key} = {get(key):g}; snnpipe's CUBA LIF has 0")
    if isinstance(node, nir.CubaLIF):
        a_u = _decay(name, node, "tau_syn", get("tau_syn"), dt)
        a_v = _decay(name, node, "tau_mem", get("tau_mem"), dt)
        gain = a_u * get("w_in") * a_v * get("r")
    elif isinstance(node, nir.LIF):
        a_u, a_v = 1.0, _decay(name, node, "tau", get("tau"), dt)
        gain = a_v * get("r")
    elif isinstance(node, nir.IF):
        a_u, a_v, gain = 1.0, 0.0, dt * get("r")
    else:  # pragma: no cover - callers dispatch on type
        raise NirError(f"NIR node {name!r} ({type(node).__name__}) is not a neuron")
    if abs(gain - 1.0) <= GAIN_TOLERANCE:
        gain = 1.0
    if not gain > 0:
        raise NirError(f"NIR node {name!r} ({type(node).__name__}) has input gain {gain:g}; it must be > 0")
    return {"type": "cuba_lif", "name": name, "current_decay": a_u, "voltage_decay": a_v,
            "threshold": get("v_threshold") / gain}


# ---------------------------------------------------------------------------------------------
# Export: torch.fx trace -> NIR nodes and edges
# ---------------------------------------------------------------------------------------------

def _pair(value: Any) -> np.ndarray:
    return np.array(value if isinstance(value, (tuple, list)) else (value, value), dtype=np.int64)


def _linear(module: nn.Linear, in_shape, out_shape, dt, path) -> nir.NIRNode:
    weight = module.weight.detach().cpu().numpy().astype(np.float32)
    if module.bias is None:
        return nir.Linear(weight=weight)
    return nir.Affine(weight=weight, bias=module.bias.detach().cpu().numpy().astype(np.float32))


def _conv2d(module: nn.Conv2d, in_shape, out_shape, dt, path) -> nir.NIRNode:
    if module.padding_mode != "zeros":
        raise UnsupportedLayerError(path, module, TARGET, f"NIR's Conv2d pads with zeros, not {module.padding_mode!r}")
    weight = module.weight.detach().cpu().numpy().astype(np.float32)
    bias = (module.bias.detach().cpu().numpy() if module.bias is not None else np.zeros(weight.shape[0])).astype(np.float32)
    padding = module.padding if isinstance(module.padding, str) else tuple(module.padding)
    return nir.Conv2d(input_shape=tuple(in_shape[1:]), weight=weight, stride=tuple(module.stride), padding=padding,
                      dilation=tuple(module.dilation), groups=module.groups, bias=bias)


def _flatten(module: nn.Flatten, in_shape, out_shape, dt, path) -> nir.NIRNode:
    if module.start_dim == 0:
        raise UnsupportedLayerError(path, module, TARGET, "it flattens the batch axis")
    end = module.end_dim - 1 if module.end_dim > 0 else module.end_dim
    return nir.Flatten(input_type={"input": np.array(in_shape)}, start_dim=module.start_dim - 1, end_dim=end)


def _avgpool2d(module: nn.AvgPool2d, in_shape, out_shape, dt, path) -> nir.NIRNode:
    kernel = _pair(module.kernel_size)
    stride = _pair(module.stride if module.stride is not None else module.kernel_size)
    padding = _pair(module.padding)
    if module.ceil_mode or (padding.any() and not module.count_include_pad):
        raise UnsupportedLayerError(path, module, TARGET, "NIR pools with floor mode and counts padding")
    if module.divisor_override == 1:
        return nir.SumPool2d(kernel_size=kernel, stride=stride, padding=padding)
    if module.divisor_override is not None:
        raise UnsupportedLayerError(path, module, TARGET, f"divisor_override={module.divisor_override} is neither mean nor sum")
    return nir.AvgPool2d(kernel_size=kernel, stride=stride, padding=padding)


def _adaptive_avgpool2d(module: nn.AdaptiveAvgPool2d, in_shape, out_shape, dt, path) -> nir.NIRNode:
    sizes, outs = in_shape[1:], out_shape[1:]
    if any(n % o for n, o in zip(sizes, outs)):
        raise UnsupportedLayerError(path, module, TARGET, f"input {tuple(sizes)} is not a multiple of output {tuple(outs)}")
    kernel = np.array([n // o for n, o in zip(sizes, outs)], dtype=np.int64)  # equal windows: a plain average pool
    return nir.AvgPool2d(kernel_size=kernel, stride=kernel.copy(), padding=np.zeros(2, dtype=np.int64))


def _cuba_lif(module: CubaLIF, in_shape, out_shape, dt, path) -> nir.NIRNode:
    return neuron_to_nir(module.params, tuple(in_shape), dt, path, module)


Mapper = Callable[[nn.Module, tuple, tuple, float, str], nir.NIRNode]
#: Module type -> NIR node. Types in `PASS_THROUGH` become no node at all (their input flows on).
EXPORT_MAPPERS: dict[type, Mapper] = {
    nn.Linear: _linear,
    nn.Conv2d: _conv2d,
    nn.Flatten: _flatten,
    nn.AvgPool2d: _avgpool2d,
    nn.AdaptiveAvgPool2d: _adaptive_avgpool2d,
    CubaLIF: _cuba_lif,
}
PASS_THROUGH = (nn.Identity, nn.Dropout)
#: The modules Loihi's timing (``delay_shift``) delays by one step: `SpikingModel._synapses`.
SYNAPSES = (nn.Linear, nn.Conv2d)
_HINTS = {
    ReLU: "NIR export takes the spiking model; this is its ANN twin",
    nn.MaxPool2d: "NIR has no max pooling; use average pooling (nn.AvgPool2d)",
    nn.BatchNorm1d: "a BatchNorm that does not directly follow a conv or linear cannot be folded",
    nn.BatchNorm2d: "a BatchNorm that does not directly follow a conv or linear cannot be folded",
}


def _mapper(module: nn.Module, path: str) -> Mapper | None:
    for kind in type(module).__mro__:
        if kind in EXPORT_MAPPERS:
            return EXPORT_MAPPERS[kind]
        if kind in PASS_THROUGH:
            return None
    hint = next((h for kind, h in _HINTS.items() if isinstance(module, kind)), "NIR export supports "
                + ", ".join(k.__name__ for k in EXPORT_MAPPERS))
    raise UnsupportedLayerError(path, module, TARGET, hint)


class _Tracer(fx.Tracer):
    """Stops at neurons and at every module without children: those are the NIR nodes."""

    def is_leaf_module(self, module: nn.Module, qualname: str) -> bool:
        return isinstance(module, Neuron) or next(module.children(), None) is None


class _Body(nn.Module):
    """The model's blocks in order, one step: what the graph describes (paths as in the model)."""

    def __init__(self, model: SpikingModel) -> None:
        super().__init__()
        self.blocks = model.blocks

    def forward(self, x: Tensor) -> Tensor:
        for block in self.blocks.values():
            x = block(x)
        return x


def _trace(model: SpikingModel, input_shape: tuple[int, ...]) -> fx.GraphModule:
    body = _Body(model)
    try:
        graph = _Tracer().trace(body)
    except Exception as err:  # fx's errors (control flow on tensors ...) are many and untyped
        raise ExportError(f"the model cannot be traced into a graph for NIR ({_first_line(err)})") from None
    module = fx.GraphModule(body, graph)
    from torch.fx.passes.shape_prop import ShapeProp

    with torch.no_grad():
        ShapeProp(module).propagate(torch.zeros(1, *input_shape))
    model.reset_state()
    for neuron in model.neurons():
        neuron.reset_activity()
    return module


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0][:160] if text else type(err).__name__


def _brief(value: Any) -> str:
    """``repr(value)`` on one line, at most 80 characters."""
    text = " ".join(repr(value).split())
    return text if len(text) <= 80 else text[:77] + "..."


def _node_path(node: fx.Node) -> str:
    stack = node.meta.get("nn_module_stack") or {}
    return list(stack.values())[-1][0] if stack else node.name


def to_nir(model: SpikingModel, input_shape: tuple[int, ...], dt: float = DEFAULT_DT,
           metadata: dict[str, Any] | None = None) -> nir.NIRGraph:
    """The NIR graph of ``model`` (BatchNorm already folded), one sample of ``input_shape``, with
    ``metadata`` (plain values: str, int, float, lists of them) in the graph's.

    Raises:
        UnsupportedLayerError: a module, function or neuron setting NIR cannot express.
        ExportError: a network in Loihi's timing that is not a chain (module docstring).
    """
    traced = _trace(model, input_shape)
    delayed = bool(getattr(model, "delay_steps", 0))
    nodes: dict[str, nir.NIRNode] = {"input": nir.Input(input_type={"input": np.array(input_shape)})}
    edges: list[tuple[str, str]] = []
    sources: dict[fx.Node, list[str]] = {}

    def shape_of(node: fx.Node) -> tuple[int, ...]:
        return tuple(node.meta["tensor_meta"].shape[1:])

    def connect(args: tuple, target: str) -> None:
        for source in sources[args[0]]:
            edges.append((source, target))

    for node in traced.graph.nodes:
        if node.op == "placeholder":
            sources[node] = ["input"]
        elif node.op == "call_module":
            module = traced.get_submodule(node.target)
            path = str(node.target)
            if len(node.args) != 1 or node.kwargs or not isinstance(node.args[0], fx.Node):
                raise UnsupportedLayerError(path, module, TARGET, "it is called with more than one input")
            mapper = _mapper(module, path)
            if mapper is None:
                sources[node] = sources[node.args[0]]
                continue
            nodes[path] = mapper(module, shape_of(node.args[0]), shape_of(node), dt, path)
            if delayed and isinstance(module, SYNAPSES):  # Loihi's timing: one step into every synapse
                nodes[f"{path}.delay"] = nir.Delay(delay=np.full(shape_of(node.args[0]), float(dt)))
                connect(node.args, f"{path}.delay")
                edges.append((f"{path}.delay", path))
            else:
                connect(node.args, path)
            sources[node] = [path]
        elif node.op == "call_function" and node.target in (operator.add, torch.add) and not node.kwargs \
                and len(node.args) == 2 and all(isinstance(a, fx.Node) for a in node.args):
            left, right = sources[node.args[0]], sources[node.args[1]]
            if set(left) & set(right):
                raise ExportError(f"{_node_path(node)} adds a value to itself, which NIR's edges cannot say")
            sources[node] = left + right
        elif node.op == "output":
            nodes["output"] = nir.Output(output_type={"output": np.array(shape_of(node.args[0]))})
            connect(node.args, "output")
        else:
            name = getattr(node.target, "__name__", str(node.target))
            raise UnsupportedLayerError(_node_path(node), node.target, TARGET, f"the operation {name!r} has no NIR node")
    if delayed and len({b for _, b in edges}) < len(edges):
        raise ExportError("this network runs in Loihi's timing (trained with --quantize loihi) and has residual "
                          "connections, whose shortcut delays the NIR export does not write: export it with "
                          "--target loihi, or train it without --quantize loihi")
    metadata = {**(metadata or {}), "dt": float(dt), "producer": f"snnpipe {__version__}"}
    try:
        return nir.NIRGraph(nodes=nodes, edges=edges, metadata=metadata)
    except Exception as err:  # nir's type check: a shape that does not line up
        raise ExportError(f"the NIR graph does not type-check ({_first_line(err)})") from None


# ---------------------------------------------------------------------------------------------
# Reading and import: NIR graph -> a "sequential" or "graph" model (snnpipe.models.graph)
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
        graph = nir.read(path)
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
        model_name: ``sequential`` (a chain) or ``graph``.
        model_args: the layer list, or the nodes and edges (`snnpipe.models.graph`).
        weights: node name -> {"weight": tensor, "bias": tensor}.
        input_shape: one sample, (C, H, W).
        num_classes: size of the output.
        dt: the time step the time constants were read with.
        neuron: the first neuron layer's parameters (the checkpoint's default).
    """

    model_name: str
    model_args: dict[str, Any]
    weights: dict[str, dict[str, Tensor]]
    input_shape: tuple[int, int, int]
    num_classes: int
    dt: float
    neuron: NeuronParams = field(default_factory=NeuronParams)

    def build(self, neuron: NeuronParams | None = None, spiking: bool = True) -> SpikingModel:
        """The model with the imported weights."""
        model = create_model(self.model_name, input_shape=self.input_shape, num_classes=self.num_classes,
                             neuron=neuron or self.neuron, spiking=spiking, **self.model_args)
        load_layer_weights(model, self.weights)
        return model.eval()


def _ints(name: str, node: object, key: str, minimum: int) -> list[int]:
    """``node.<key>``, one or two integers >= ``minimum``, as two; NirError otherwise."""
    array = np.atleast_1d(np.asarray(getattr(node, key, None)))
    if array.dtype.kind not in "fiu" or array.ndim != 1 or len(array) not in (1, 2) or not np.all(np.isfinite(array)) \
            or np.any(array != np.round(array)) or np.any(array < minimum):
        raise NirError(f"NIR node {name!r} ({type(node).__name__}): {key} is not one or two integers >= {minimum} "
                       f"({array.dtype} of shape {array.shape}); {DAMAGED}")
    flat = array.astype(np.int64).tolist()
    return flat * 2 if len(flat) == 1 else flat


def _int(name: str, node: object, key: str) -> int:
    value = np.asarray(getattr(node, key, None))
    if value.dtype.kind not in "iu" or value.size != 1:
        raise NirError(f"NIR node {name!r} ({type(node).__name__}): {key} is not an integer "
                       f"({value.dtype} of shape {value.shape}); {DAMAGED}")
    return int(value.reshape(()))


def _tensor(value: Any) -> Tensor:
    return torch.as_tensor(np.asarray(value, dtype=np.float32))


def _layer_from_nir(name: str, node: nir.NIRNode, in_shape: tuple[int, ...] | None, dt: float):
    """(layer dict, weights) of one node; NirError for a node type snnpipe does not import or values
    that do not make a layer (not finite, shapes that do not fit)."""
    def damaged(what: str) -> NirError:
        return NirError(f"NIR node {name!r} ({type(node).__name__}): {what}; {DAMAGED}")

    if isinstance(node, (nir.Affine, nir.Linear)):
        weight = _values(name, node, "weight")
        if weight.ndim != 2:
            raise NirError(f"NIR node {name!r} ({type(node).__name__}) has a {weight.ndim}-D weight; snnpipe imports 2-D")
        bias = isinstance(node, nir.Affine)
        weights = {"weight": _tensor(weight)}
        if bias:
            weights["bias"] = _tensor(_values(name, node, "bias", 1))
            if len(weights["bias"]) != weight.shape[0]:
                raise damaged(f"bias has {len(weights['bias'])} values for {weight.shape[0]} outputs")
        return {"type": "linear", "name": name, "in_features": int(weight.shape[1]),
                "out_features": int(weight.shape[0]), "bias": bias}, weights
    if isinstance(node, nir.Conv2d):
        weight = _values(name, node, "weight", 4)
        out, groups = weight.shape[0], _int(name, node, "groups")
        if groups < 1 or out % groups:
            raise damaged(f"groups={groups} does not divide its {out} output channels")
        stride = _ints(name, node, "stride", 1)
        padding = node.padding if isinstance(node.padding, str) else _ints(name, node, "padding", 0)
        if isinstance(padding, str) and (padding not in ("same", "valid") or (padding == "same" and stride != [1, 1])):
            raise damaged(f"padding={padding!r} with stride {stride} is neither 'valid' nor 'same' with stride 1")
        layer = {"type": "conv2d", "name": name, "in_channels": int(weight.shape[1]) * groups,
                 "out_channels": int(out), "kernel_size": list(weight.shape[2:]), "stride": stride,
                 "padding": padding, "dilation": _ints(name, node, "dilation", 1), "groups": groups, "bias": True}
        bias = np.zeros(out) if node.bias is None else _values(name, node, "bias").reshape(-1)
        if bias.size != out:
            raise damaged(f"bias has {bias.size} values for {out} output channels")
        return layer, {"weight": _tensor(weight), "bias": _tensor(bias)}
    if isinstance(node, (nir.AvgPool2d, nir.SumPool2d)):
        kind = "sumpool2d" if isinstance(node, nir.SumPool2d) else "avgpool2d"
        kernel, padding = _ints(name, node, "kernel_size", 1), _ints(name, node, "padding", 0)
        if any(2 * p > k for p, k in zip(padding, kernel)):
            raise damaged(f"padding {padding} is more than half its window {kernel}")
        return {"type": kind, "name": name, "kernel_size": kernel, "stride": _ints(name, node, "stride", 1),
                "padding": padding}, {}
    if isinstance(node, nir.Flatten):
        first, last = _int(name, node, "start_dim"), _int(name, node, "end_dim")
        dims = len(in_shape) if in_shape is not None else None
        start = first + dims if dims is not None and first < 0 else first
        end = last + dims if dims is not None and last < 0 else last
        if dims is not None and not (start == 0 and end == dims - 1) and dims > 1:
            raise NirError(f"NIR node {name!r} (Flatten) flattens dims {first}..{last} of "
                           f"{tuple(in_shape)}; snnpipe imports a Flatten of the whole sample")
        return {"type": "flatten", "name": name}, {}
    if isinstance(node, (nir.LIF, nir.CubaLIF, nir.IF)):
        return neuron_from_nir(name, node, dt), {}
    kind = type(node).__name__
    extra = " (a subgraph: recurrent layers are not supported)" if isinstance(node, nir.NIRGraph) else ""
    raise NirError(f"NIR node {name!r} ({kind}){extra} cannot be imported into snnpipe; supported: {', '.join(IMPORTABLE)}")


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


def from_nir(graph: nir.NIRGraph, dt: float | None = None, input_shape: tuple[int, ...] | None = None,
             refractory_steps: int = 0) -> ImportedNetwork:
    """A NIR graph as an snnpipe network.

    Args:
        graph: as read by `read_nir`.
        dt: the time step of the file; default the graph's metadata ``dt``, else `DEFAULT_DT`.
        input_shape: (C, H, W) to give a graph whose input is flat (N,): a Flatten goes first.
        refractory_steps: given to every CubaLIF (1 reproduces snnTorch's default ``Synaptic``).

    Raises:
        NirError: an unsupported node or graph; the message names the node.
    """
    metadata = graph.metadata if isinstance(graph.metadata, dict) else {}
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
    rename = {inputs[0]: "input", outputs[0]: "output"}
    if {"input", "output"} & (set(graph.nodes) - set(rename)):
        raise NirError("the NIR graph names an inner node 'input' or 'output'; rename it")
    edges = [[rename.get(a, a), rename.get(b, b)] for a, b in graph.edges]
    in_shapes = {rename.get(b, b): _shape(graph.nodes[a].output_type, "output") for a, b in graph.edges}
    layers: list[dict] = []
    weights: dict[str, dict[str, Tensor]] = {}
    delays: list[str] = []
    for name, node in graph.nodes.items():
        if name in rename:
            continue
        if isinstance(node, nir.Delay):
            _one_step(name, node, dt)
            delays.append(name)
            continue
        layer, tensors = _layer_from_nir(name, node, in_shapes.get(name), dt)
        if isinstance(node, nir.CubaLIF) and refractory_steps:
            layer["refractory_steps"] = int(refractory_steps)
        layers.append(layer)
        if tensors:
            weights[name] = tensors
    edges = _skip_delays(delays, edges, layers)
    if graph_input is not None and len(graph_input) == 1 and len(shape) == 3:
        layers.insert(0, {"type": "flatten", "name": "input.flatten"})
        edges = [["input.flatten", b] if a == "input" else [a, b] for a, b in edges] + [["input", "input.flatten"]]
    out_shape = _shape(graph.nodes[outputs[0]].output_type, "output")
    if out_shape is None or len(out_shape) != 1 or out_shape[0] < 2:
        raise NirError(f"the NIR graph outputs shape {out_shape}; snnpipe imports a network with a flat output of >= 2 values")
    chain = _chain(layers, edges)
    if chain is not None:
        by_name = {layer["name"]: layer for layer in layers}
        name, args = "sequential", {"layers": [by_name[n] for n in chain]}
    else:
        name, args = "graph", {"nodes": layers, "edges": edges}
    if delays:
        if chain is None:
            raise NirError(f"the NIR graph has Delay nodes ({delays[0]} ...) and is not a chain; snnpipe imports "
                           "Loihi's timing in a chain of layers only")
        args["delay_shift"] = True
    first = next((layer for layer in layers if layer["type"] == "cuba_lif"), None)
    try:
        neuron = NeuronParams() if first is None else NeuronParams(
            current_decay=first["current_decay"], voltage_decay=first["voltage_decay"],
            threshold=first["threshold"], refractory_steps=first.get("refractory_steps", 0))
        network = ImportedNetwork(name, args, weights, shape, out_shape[0], dt, neuron)
        network.build()
    except SnnpipeError as err:
        raise NirError(f"the NIR graph does not describe a network snnpipe can build: {err}") from None
    return network


def _one_step(name: str, node: nir.Delay, dt: float) -> None:
    """Refuse a Delay node other than one step (``dt`` seconds) everywhere."""
    delay = _values(name, node, "delay")
    if not np.allclose(delay, dt, rtol=GAIN_TOLERANCE, atol=0.0):
        raise NirError(f"NIR node {name!r} (Delay) delays {delay.min():g} .. {delay.max():g} s; snnpipe imports a delay "
                       f"of one step (dt = {dt:g} s) before every Affine, Linear and Conv2d (Loihi's timing)")


def _skip_delays(delays: list[str], edges: list[list[str]], layers: list[dict]) -> list[list[str]]:
    """The edges with every Delay node cut out, where the Delays are Loihi's timing (module docstring):
    one in front of each linear and conv layer and nowhere else; NirError otherwise."""
    kinds = {layer["name"]: layer["type"] for layer in layers}
    delayed = set()
    for delay in delays:
        before = [a for a, b in edges if b == delay]
        after = [b for a, b in edges if a == delay]
        if len(before) != 1 or len(after) != 1 or kinds.get(after[0]) not in ("linear", "conv2d"):
            raise NirError(f"NIR node {delay!r} (Delay) does not lead from one node into one Affine, Linear or Conv2d; "
                           "snnpipe imports Loihi's timing: a one-step Delay in front of each of them")
        delayed.add(after[0])
        edges = [e for e in edges if delay not in e] + [[before[0], after[0]]]
    synapses = {name for name, kind in kinds.items() if kind in ("linear", "conv2d")}
    if delays and delayed != synapses:
        raise NirError(f"the NIR graph delays {len(delayed)} of its {len(synapses)} Affine, Linear and Conv2d nodes "
                       f"(not {', '.join(sorted(synapses - delayed)[:3])}); snnpipe imports Loihi's timing: a one-step "
                       "Delay in front of each of them")
    return edges


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


def _chain(layers: list[dict], edges: list[list[str]]) -> list[str] | None:
    """The layer names from input to output if the graph is one chain through all of them."""
    succ: dict[str, list[str]] = {}
    pred: dict[str, list[str]] = {}
    for a, b in edges:
        succ.setdefault(a, []).append(b)
        pred.setdefault(b, []).append(a)
    order, node = [], "input"
    while node != "output":
        nexts = succ.get(node, [])
        if len(nexts) != 1 or len(pred.get(nexts[0], [])) != 1:
            return None
        node = nexts[0]
        if node != "output":
            order.append(node)
    return order if len(order) == len(layers) else None


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
    reference_neurons = {name: m for name, m in folded.named_modules() if isinstance(m, CubaLIF)}
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
        unfolded = compare(request.model.eval(), {n: m for n, m in request.model.named_modules() if isinstance(m, CubaLIF)},
                           folded, reference_neurons, x)
        size = tmp.stat().st_size
    report = {
        "nir_version": version, "dt": dt, "nodes": len(graph.nodes), "edges": len(graph.edges),
        "neuron_nodes": len(reference_neurons), "read_back_as": imported.model_name, "timesteps": request.timesteps,
        "encoding": request.encoding, "file_bytes": size, "verified": check,
        "batchnorm_folding": {"max_abs_diff": unfolded["max_abs_diff"], "spikes_mismatched": unfolded["spikes_mismatched"]},
    }
    return ExportResult(TARGET, out, report)
