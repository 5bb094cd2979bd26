"""The typed graph as a SANA-FE job: neuron groups, and the synapses between them.

`graph_job` maps any feed-forward graph of the IR (`snnpipe.models.ir`) onto SANA-FE's network
model, which has two things: groups of neurons (the Loihi architecture's ``leaky_integrate_fire``
soma, or its ``input`` soma that replays a spike train), and synapses, each a (source neuron,
target neuron, weight) triple. So:

- every neuron node (`SANAFE_NEURONS`: CubaLIF, CubaLI, Integrator) and the Input is a group; a
  head without neurons (synapses straight into the Output, a checkpoint's readout) is a
  non-spiking integrator group named ``output``, as Loihi runs a readout;
- the nodes between groups are linear maps of one sample (`SANAFE_SYNAPSES`: Affine, Conv2d with
  any padding, groups and dilation, sum and average pooling, Flatten, Scale), each a sparse
  (out, in) matrix in the graph's (C, H, W) order; a path of them (pool then conv, flatten then
  affine) is their product, and the branches into a node add (a residual add is several synapse
  sets into one group, summed by SANA-FE's dendrite as by Lava's port). A pool is thus no layer of
  its own: its fixed weights (1, or 1/k^2 for the average) are multiplied into the next synapse,
  as snnpipe's Loihi export folds it. Zero weights are left out (no synapse: Lava's and the
  profiler's counting);
- a synapse's bias (Affine, Conv2d) is a constant current: SANA-FE adds a neuron's ``bias`` to its
  potential every step, the same thing where the current does not decay (current_decay 1).

The neuron update of SANA-FE's ``leaky_integrate_fire`` (``LoihiLifModel::update``, SANA-FE
``src/models.cpp``)::

    u = input_decay u;  v = trunc(64 leak_decay v) / 64;  v += bias;  u += sum_w;  v += u
    spike where v > threshold, then v = reset (hard) or v - threshold (soft)

with the IR's ``input_decay = 1 - current_decay``, ``leak_decay = 1 - voltage_decay``,
``bias = bias + voltage_decay v_leak``. A spike sent at step t reaches its targets' somas at step
t + 1, one step per synapse as in Lava. For the network as snnpipe's Loihi export quantized it
(`LoihiGraph.to_ir`: integer weights, biases and thresholds in weight units), that update is Lava's
fixed-point one (`fixed_point`) exactly where the current does not decay (IF and LIF neurons,
relays, the readout): SANA-FE's truncation of ``64 v`` is Lava's round toward zero of v in state
units (2^-6 weight units), and every sum is an integer a double holds exactly. Two differences
remain, both outside what the export writes for IF and LIF neurons:

- a current that decays (CUBA, 0 < current_decay < 1): SANA-FE keeps ``u (1 - a_u)`` unrounded,
  Lava rounds it toward zero in state units, so their spikes can differ;
- Lava wraps u at 24 bits and clips v to +-(2^23 - 1); SANA-FE's doubles do neither (the export's
  report counts Lava's wraps and saturations, `LayerCounters`).

What SANA-FE's groups cannot hold raises `SnnpipeError` naming the node: a recurrent edge or a
Delay node, a refractory period, a Threshold or Conv1d node, a synapse bias into a decaying current.
"""

from __future__ import annotations

import math
import warnings
from typing import Any, Callable

import numpy as np
import torch

from snnpipe.errors import SnnpipeError
from snnpipe.hw_targets.loihi.cores import CoreLimits, cores_for
from snnpipe.models import ir

#: SANA-FE's Loihi architecture (``sanafe/examples/loihi.yaml``): 32 tiles of 4 cores, 1024
#: neurons (``max_neurons_supported``) and 1024 input somas per core; Loihi's 128 KB synaptic
#: memory per core (Davies et al. 2018) at one byte per 8-bit weight.
SANAFE_LOIHI = CoreLimits(1024, 128 * 1024, 1, 128, source="sanafe/examples/loihi.yaml (4 cores x 32 tiles, "
                          "max_neurons_supported 1024); Davies et al. 2018: 128 KB synaptic memory per core")
#: The weight of a synapse: a (rows = target neurons, cols = source neurons) sparse matrix.
Matrix = torch.Tensor


def _sparse(rows: np.ndarray, cols: np.ndarray, values: np.ndarray, shape: tuple[int, int]) -> Matrix:
    keep = values != 0
    indices = torch.as_tensor(np.stack([rows[keep], cols[keep]]), dtype=torch.int64)
    return torch.sparse_coo_tensor(indices, torch.as_tensor(values[keep], dtype=torch.float64), shape,
                                   check_invariants=True).coalesce()


def _identity(n: int) -> Matrix:
    index = np.arange(n)
    return _sparse(index, index, np.ones(n), (n, n))


def _window(weight: np.ndarray, in_shape: tuple[int, ...], out_shape: tuple[int, ...], stride, padding, dilation,
            groups: int) -> Matrix:
    """PyTorch's grouped Conv2d (a correlation, zero padding) on one (C, H, W) sample as a matrix:
    output (o, y, x) takes input (g per_group + i, y s - p + ky d, x s - p + kx d) times w[o, i, ky, kx]."""
    c_out, per_group, kh, kw = weight.shape
    _, h, w = in_shape
    _, ho, wo = out_shape
    o, i, ky, kx, y, x = np.ix_(np.arange(c_out), np.arange(per_group), np.arange(kh), np.arange(kw),
                                np.arange(ho), np.arange(wo))
    iy = y * stride[0] - padding[0] + ky * dilation[0]
    ix = x * stride[1] - padding[1] + kx * dilation[1]
    channel = (o // (c_out // groups)) * per_group + i
    full = np.broadcast_shapes(o.shape, i.shape, ky.shape, kx.shape, y.shape, x.shape)
    rows = np.broadcast_to((o * ho + y) * wo + x, full).ravel()
    cols = np.broadcast_to((channel * h + iy) * w + ix, full).ravel()
    values = np.broadcast_to(weight[o, i, ky, kx], full).ravel().astype(float)
    inside = np.broadcast_to((iy >= 0) & (iy < h) & (ix >= 0) & (ix < w), full).ravel()
    return _sparse(rows[inside], cols[inside], values[inside], (math.prod(out_shape), math.prod(in_shape)))


def _padding(node: ir.Conv2d) -> tuple[int, int]:
    if node.padding == "valid":
        return 0, 0
    if node.padding == "same":  # PyTorch's: the total d (k - 1), the smaller half first
        return tuple(d * (k - 1) // 2 for d, k in zip(node.dilation, node.weight.shape[2:]))
    return node.padding


def _affine(node: ir.Affine, in_shape, out_shape) -> tuple[Matrix, np.ndarray | None]:
    rows, cols = np.nonzero(node.weight)
    return _sparse(rows, cols, node.weight[rows, cols], node.weight.shape), node.bias


def _conv2d(node: ir.Conv2d, in_shape, out_shape) -> tuple[Matrix, np.ndarray | None]:
    matrix = _window(node.weight, in_shape, out_shape, node.stride, _padding(node), node.dilation, node.groups)
    bias = None if node.bias is None else np.repeat(node.bias, math.prod(out_shape[1:]))
    return matrix, bias


def _pool(average: bool) -> Callable[..., tuple[Matrix, None]]:
    def mapper(node, in_shape, out_shape) -> tuple[Matrix, None]:
        kh, kw = node.kernel_size
        ones = np.full((in_shape[0], 1, kh, kw), 1.0 / (kh * kw) if average else 1.0)
        return _window(ones, in_shape, out_shape, node.stride, node.padding, (1, 1), in_shape[0]), None
    return mapper


def _flatten(node: ir.Flatten, in_shape, out_shape) -> tuple[Matrix, None]:
    return _identity(math.prod(in_shape)), None


def _scale(node: ir.Scale, in_shape, out_shape) -> tuple[Matrix, None]:
    n = math.prod(in_shape)
    index = np.arange(n)
    return _sparse(index, index, np.broadcast_to(node.scale, in_shape).ravel().astype(float), (n, n)), None


#: IR node type -> its linear map of one sample: (sparse (out, in) matrix, bias per output or None).
SANAFE_SYNAPSES: dict[type, Callable[..., tuple[Matrix, np.ndarray | None]]] = {
    ir.Affine: _affine, ir.Conv2d: _conv2d, ir.SumPool2d: _pool(False), ir.AvgPool2d: _pool(True),
    ir.Flatten: _flatten, ir.Scale: _scale}


def _cuba_lif(node: ir.CubaLIF) -> tuple[dict[str, Any], Any]:
    if node.refractory_steps:
        raise ValueError(f"a refractory period of {node.refractory_steps} steps")
    return {"threshold": node.threshold, "input_decay": 1.0 - np.asarray(node.current_decay),
            "leak_decay": 1.0 - np.asarray(node.voltage_decay),
            "bias": (0.0 if node.bias is None else node.bias) + np.asarray(node.voltage_decay) * node.v_leak,
            "reset_mode": "hard" if node.reset == "zero" else "soft", "reset": node.v_reset}, 1.0


def _cuba_li(node: ir.CubaLI) -> tuple[dict[str, Any], Any]:
    return {"threshold": math.inf, "input_decay": 1.0 - np.asarray(node.current_decay),
            "leak_decay": 1.0 - np.asarray(node.voltage_decay),
            "bias": (0.0 if node.bias is None else node.bias) + np.asarray(node.voltage_decay) * node.v_leak,
            "reset_mode": "none"}, node.gain


def _integrator(node: ir.Integrator) -> tuple[dict[str, Any], Any]:
    return {"threshold": math.inf, "input_decay": 0.0, "leak_decay": 1.0, "bias": 0.0, "reset_mode": "none"}, node.gain


#: IR neuron type -> (the SANA-FE soma attributes of its group, the gain its input current is multiplied by).
SANAFE_NEURONS: dict[type, Callable[..., tuple[dict[str, Any], Any]]] = {
    ir.CubaLIF: _cuba_lif, ir.CubaLI: _cuba_li, ir.Integrator: _integrator}


class _Drive:
    """A node's output as an affine map of the groups' spikes: ``sum_g M_g s_g + bias``;
    ``weighted`` once a node other than Flatten is on the way (a readout's synapses)."""

    def __init__(self, matrices: dict[str, Matrix], bias: np.ndarray, weighted: bool = False) -> None:
        self.matrices, self.bias, self.weighted = matrices, bias, weighted

    @classmethod
    def total(cls, drives: list["_Drive"]) -> "_Drive":
        matrices: dict[str, Matrix] = {}
        for drive in drives:
            for source, matrix in drive.matrices.items():
                matrices[source] = (matrices[source] + matrix).coalesce() if source in matrices else matrix
        return cls(matrices, sum(d.bias for d in drives), len(drives) > 1 or any(d.weighted for d in drives))

    def through(self, matrix: Matrix, bias: np.ndarray | None, weighted: bool) -> "_Drive":
        after = matrix @ torch.as_tensor(self.bias, dtype=torch.float64).unsqueeze(1)
        added = after.squeeze(1).numpy() + (0.0 if bias is None else bias)
        with warnings.catch_warnings():  # torch multiplies sparse COO through its CSR kernels, "in beta"
            warnings.simplefilter("ignore", UserWarning)
            return _Drive({s: torch.sparse.mm(matrix, m).coalesce() for s, m in self.matrices.items()}, added,
                          self.weighted or weighted)


def _per_neuron(values: dict[str, Any], shape: tuple[int, ...]) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Split soma attributes into one value per group and arrays of one value per neuron."""
    scalars, arrays = {}, {}
    for key, value in values.items():
        array = np.asarray(value)
        if array.dtype.kind in "fiu" and array.size > 1:
            arrays[key] = np.broadcast_to(array, shape).ravel().astype(float)
        else:
            scalars[key] = value if isinstance(value, str) else float(array.reshape(-1)[0])
    return scalars, arrays


def graph_job(graph: ir.Graph, steps: int, spikes: np.ndarray | None = None, bias: np.ndarray | None = None,
              cores: list[int] | None = None) -> dict[str, Any]:
    """The ``network`` job of ``sanafe_runner.py`` for ``graph`` (module docstring), run ``steps`` steps.

    Args:
        spikes: (T, *input_shape) binary spikes the input neurons send at steps 0 .. T-1 (SANA-FE's
            ``input`` somas replay them; those cost nothing, as a host's input), or
        bias: one sample of the input shape, the bias of input neurons that integrate it and fire
            at threshold 1 (a graded input rate-coded on the chip, as SANA-FE's DVS network does).
        cores: per group (the input first, then the neuron groups in the graph's order), its Loihi
            cores; by default `cores_for` its neurons and incoming synapses on `SANAFE_LOIHI`.

    Raises:
        SnnpipeError: a node SANA-FE cannot hold (module docstring), named; neither or both of
            ``spikes`` and ``bias``; more cores than SANA-FE's Loihi has.
    """
    if (spikes is None) == (bias is None):
        raise SnnpipeError("the SANA-FE job takes the input as spikes or as a bias, one of the two")
    if graph.recurrent_edges():
        a, b = graph.recurrent_edges()[0]
        raise SnnpipeError(f"edge {a!r} -> {b!r} is recurrent: the SANA-FE job maps feed-forward graphs")
    shapes = graph.shapes()
    input_shape = shapes[graph.input]
    n_input = math.prod(input_shape)
    group = {"name": graph.input, "neurons": n_input}
    if spikes is not None:
        spikes = np.asarray(spikes)
        if spikes.shape[1:] != tuple(input_shape) or not np.isin(spikes, (0, 1)).all() or len(spikes) > steps:
            raise SnnpipeError(f"input spikes of shape {spikes.shape}: expected at most {steps} steps of 0/1 "
                               f"spikes of shape {tuple(input_shape)}")
        group["spikes"] = spikes.reshape(len(spikes), n_input).T.astype(bool)
    else:
        group.update(attributes={"threshold": 1.0},
                     per_neuron={"bias": np.broadcast_to(np.asarray(bias, dtype=float), input_shape).ravel()})
    groups = [group]
    connections: list[dict[str, Any]] = []
    index = {graph.input: 0}
    drives = {graph.input: _Drive({graph.input: _identity(n_input)}, np.zeros(n_input))}

    def add_group(name: str, shape: tuple[int, ...], attributes: dict[str, Any], gain: Any, drive: _Drive) -> None:
        n = math.prod(shape)
        gain = np.broadcast_to(np.asarray(gain, dtype=float), shape).ravel()
        synaptic_bias = drive.bias * gain
        if np.any(synaptic_bias) and np.any(np.asarray(attributes["input_decay"]) != 0):
            raise SnnpipeError(f"node {name!r}: a synapse bias into a decaying current, which SANA-FE's soma "
                               "bias (added to v) does not equal")
        attributes = {**attributes, "bias": np.broadcast_to(attributes["bias"], shape) + synaptic_bias.reshape(shape)}
        scalars, arrays = _per_neuron(attributes, shape)
        index[name] = len(groups)
        groups.append({"name": name, "neurons": n, "attributes": scalars, "per_neuron": arrays})
        for source, matrix in drive.matrices.items():
            rows, cols = matrix.indices().numpy()
            if not len(rows):  # every weight from this source is 0: no synapse
                continue
            connections.append({"source": index[source], "target": index[name], "src": cols, "dst": rows,
                                "weight": matrix.values().numpy() * gain[rows]})
        drives[name] = _Drive({name: _identity(n)}, np.zeros(n))

    for name in graph.order():
        node = graph.nodes[name]
        if name == graph.input:
            continue
        incoming = _Drive.total([drives[s] for s in graph.inputs(name)])
        if type(node) in SANAFE_SYNAPSES:
            matrix, node_bias = SANAFE_SYNAPSES[type(node)](node, shapes[graph.inputs(name)[0]], shapes[name])
            drives[name] = incoming.through(matrix, node_bias, not isinstance(node, ir.Flatten))
        elif type(node) in SANAFE_NEURONS:
            try:
                attributes, gain = SANAFE_NEURONS[type(node)](node)
            except ValueError as err:
                raise SnnpipeError(f"node {name!r} ({type(node).__name__}): {err}; SANA-FE's soma has none") from None
            add_group(name, shapes[name], attributes, gain, incoming)
        elif isinstance(node, ir.Output):
            if incoming.weighted:  # a readout of synapses: Loihi's integrator
                add_group(name, shapes[name], *_integrator(ir.Integrator()), incoming)
        else:
            raise SnnpipeError(f"node {name!r} ({type(node).__name__}): SANA-FE's groups hold "
                               f"{', '.join(t.__name__ for t in (*SANAFE_SYNAPSES, *SANAFE_NEURONS))}")
    synapses = [0] * len(groups)
    for connection in connections:
        synapses[connection["target"]] += len(connection["weight"])
    cores = cores or [cores_for(g["neurons"], s, SANAFE_LOIHI) for g, s in zip(groups, synapses)]
    if len(cores) != len(groups) or sum(cores) > SANAFE_LOIHI.cores_per_chip:
        raise SnnpipeError(f"the SANA-FE job has {len(groups)} groups on {sum(cores)} cores: it needs one count per "
                           f"group and at most SANA-FE's {SANAFE_LOIHI.cores_per_chip} Loihi cores")
    for group, count in zip(groups, cores):
        group["cores"] = int(count)
    return {"job": "network", "steps": int(steps), "groups": groups, "connections": connections}
