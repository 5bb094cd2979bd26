"""The typed graph at the centre: NIR-shaped nodes in snnpipe's discrete time, and the graph of them.

Every importer, exporter and builder is a ``{node type: mapper}`` table over this graph (NIR both
ways, Loihi, ONNX, the ``nn.Module`` builder), and one tracer (`snnpipe.models.tracer`) turns a model
into it. One step per timestep; decays are fractions per step (SPEC §2, `models.neurons`). A node
with several incoming edges gets their sum (NIR's convention: a residual add is two edges into one
node).

The nodes, one sample each (no batch or time axis in any shape)::

    Input(shape)  Output(shape)                      the graph's ends
    Affine(weight[out, in], bias[out] | None)        y = W x + b      (NIR's Linear: bias None)
    Conv1d(weight[out, in/groups, k], ...)           PyTorch's Conv1d on (C, L)
    Conv2d(weight[out, in/groups, kh, kw], bias, stride, padding, dilation, groups)   on (C, H, W)
    SumPool2d / AvgPool2d(kernel_size, stride, padding)   sum / mean over each window, zero padding
    Flatten(start_dim, end_dim)                      dims of one sample
    CubaLIF(current_decay a_u, voltage_decay a_v, threshold theta, reset, refractory_steps,
            v_leak, v_reset, bias)                   the spiking neuron:
        u[t] = (1 - a_u) u[t-1] + x[t]
        v[t] = (1 - a_v) v[t-1] + a_v v_leak + u[t] + bias
        s[t] = v[t] > theta;  then v = v_reset (reset "zero") or v - theta (reset "subtract")
        `LIF` and `IF` build the CubaLIF with a_u = 1 (and a_v = 0 for IF).
    CubaLI(current_decay, voltage_decay, gain, v_leak, bias)   the same without spikes; the output
        is v[t], with v[t] = (1 - a_v) v[t-1] + a_v v_leak + gain u[t] + bias (`LI`: a_u = 1)
    Integrator(gain)                                 v[t] = v[t-1] + gain x[t]  (NIR's I)
    Threshold(threshold)                             s = x > threshold          (NIR's Threshold)
    Scale(scale)                                     y = scale x
    Delay(steps)                                     y[t] = x[t - steps] (0 before the first step)

Parameters are floats or numpy float arrays; an array is per neuron and must broadcast to the
node's shape (NIR allows it; a consumer that holds one value per layer refuses it by name). Each node
checks its fields on construction and raises `ValueError` naming the field and the value.

`NODE_TYPES` is the one ``{type name: class}`` table: `Graph.to_data` and `Graph.from_data` write and
read the plain types a checkpoint's ``model_args`` hold (lists, floats), and the NIR mappers key on
the same names.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, ClassVar, Iterable, Union

import numpy as np

Shape = tuple[int, ...]
Param = Union[float, np.ndarray]
#: Reset kinds of `CubaLIF` (as `snnpipe.models.params.RESETS`).
RESETS = ("zero", "subtract")


def _fail(node: object, name: str, value: Any, why: str) -> ValueError:
    text = " ".join(repr(value).split())
    text = text if len(text) <= 60 else text[:57] + "..."
    return ValueError(f"{type(node).__name__}.{name}={text}: {why}")


def _array(node: object, name: str, value: Any, ndim: int | None = None) -> np.ndarray:
    """A finite float64 array, read-only (nodes are values)."""
    try:
        raw = np.asarray(value)
        if raw.dtype.kind not in "biuf":  # complex would lose its imaginary part; strings, objects
            raise TypeError
        array = np.array(raw, dtype=np.float64)
    except (TypeError, ValueError):
        raise _fail(node, name, value, "must be an array of real numbers") from None
    if ndim is not None and array.ndim != ndim:
        raise _fail(node, name, value, f"must be {ndim}-D, not {array.ndim}-D")
    if array.size == 0 or not np.all(np.isfinite(array)):
        raise _fail(node, name, value, "must be finite and not empty")
    array.flags.writeable = False
    return array


def _param(node: object, name: str, value: Any, low: float = -math.inf, high: float = math.inf,
           low_open: bool = False) -> Param:
    """A finite float, or a float array of per-neuron values, within [low, high] (``low_open``: > low)."""
    scalar = np.ndim(value) == 0
    array = _array(node, name, value)
    if np.any(array > high) or np.any(array <= low if low_open else array < low):
        bound = f"> {low:g}" if low_open else f">= {low:g}"
        where = f"in [{low:g}, {high:g}]" if high < math.inf else bound
        raise _fail(node, name, value, f"must lie {where}")
    return float(array) if scalar else array


def _ints(node: object, name: str, value: Any, count: int, minimum: int) -> tuple[int, ...]:
    """One integer or ``count`` of them, each >= ``minimum``, as a tuple of ``count``."""
    values = np.atleast_1d(np.asarray(value))
    if values.dtype.kind not in "fiu" or values.ndim != 1 or len(values) not in (1, count) \
            or not np.all(np.isfinite(values)) or np.any(values != np.round(values)) or np.any(values < minimum):
        raise _fail(node, name, value, f"must be 1 or {count} integers >= {minimum}")
    ints = tuple(int(v) for v in values)
    return ints * count if len(ints) == 1 else ints


def _int(node: object, name: str, value: Any, minimum: int | None = None) -> int:
    number = np.asarray(value)
    if number.dtype.kind not in "iuf" or number.ndim != 0 or not np.isfinite(number) or number != np.round(number):
        raise _fail(node, name, value, "must be an integer")
    if minimum is not None and int(value) < minimum:
        raise _fail(node, name, value, f"must be >= {minimum}")
    return int(value)


def _shape(node: object, name: str, value: Any) -> Shape:
    values = np.atleast_1d(np.asarray(value))
    if values.dtype.kind not in "fiu" or values.ndim != 1 or np.any(values != np.round(values)) or np.any(values < 1):
        raise _fail(node, name, value, "must be positive integers (one sample's shape)")
    return tuple(int(v) for v in values)


def _window(size: int, kernel: int, stride: int, padding: int, dilation: int = 1) -> int:
    """Output length of a convolution or pooling window: floor((n + 2p - d(k-1) - 1) / s) + 1."""
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


class Node:
    """Base of the node classes: `output_shape` of one sample, and the fields as plain data."""

    #: Array fields that a built module holds as its weights: `Graph.to_data` can leave them out.
    WEIGHTS: ClassVar[tuple[str, ...]] = ()

    def _set(self, name: str, value: Any) -> None:
        object.__setattr__(self, name, value)

    def output_shape(self, shape: Shape) -> Shape:
        """The shape after this node of one sample of ``shape``; ValueError where it does not fit."""
        return shape

    def _per_neuron(self, shape: Shape, names: Iterable[str]) -> None:
        for name in names:
            value = getattr(self, name)
            if isinstance(value, np.ndarray):
                try:
                    np.broadcast_shapes(value.shape, shape)
                except ValueError:
                    raise _fail(self, name, value.shape, f"per-neuron values do not fit the layer's shape {shape}") from None


@dataclass(frozen=True, eq=False)
class Input(Node):
    shape: Shape

    def __post_init__(self) -> None:
        self._set("shape", _shape(self, "shape", self.shape))

    def output_shape(self, shape: Shape) -> Shape:
        return self.shape


@dataclass(frozen=True, eq=False)
class Output(Node):
    shape: Shape

    def __post_init__(self) -> None:
        self._set("shape", _shape(self, "shape", self.shape))

    def output_shape(self, shape: Shape) -> Shape:
        if tuple(shape) != self.shape:
            raise ValueError(f"Output.shape={self.shape}: the graph gives {tuple(shape)}")
        return self.shape


@dataclass(frozen=True, eq=False)
class Affine(Node):
    """y = W x + b on a flat sample: weight [out, in], bias [out] or None (NIR's Linear)."""

    weight: np.ndarray
    bias: np.ndarray | None = None
    WEIGHTS: ClassVar[tuple[str, ...]] = ("weight", "bias")

    def __post_init__(self) -> None:
        self._set("weight", _array(self, "weight", self.weight, 2))
        if self.bias is not None:
            self._set("bias", _array(self, "bias", self.bias, 1))
            if len(self.bias) != len(self.weight):
                raise _fail(self, "bias", self.bias.shape, f"needs {len(self.weight)} values, one per output")

    def output_shape(self, shape: Shape) -> Shape:
        if tuple(shape) != (self.weight.shape[1],):
            raise ValueError(f"Affine takes {self.weight.shape[1]} features; it gets shape {tuple(shape)}")
        return (self.weight.shape[0],)


@dataclass(frozen=True, eq=False)
class _Conv(Node):
    weight: np.ndarray
    bias: np.ndarray | None = None
    stride: Any = 1
    padding: Any = 0
    dilation: Any = 1
    groups: int = 1
    WEIGHTS: ClassVar[tuple[str, ...]] = ("weight", "bias")
    DIMS: ClassVar[int] = 2

    def __post_init__(self) -> None:
        dims = self.DIMS
        self._set("weight", _array(self, "weight", self.weight, dims + 2))
        out = self.weight.shape[0]
        self._set("groups", _int(self, "groups", self.groups, 1))
        if out % self.groups:
            raise _fail(self, "groups", self.groups, f"does not divide the {out} output channels")
        if self.bias is not None:
            self._set("bias", _array(self, "bias", self.bias, 1))
            if len(self.bias) != out:
                raise _fail(self, "bias", self.bias.shape, f"needs {out} values, one per output channel")
        self._set("stride", _ints(self, "stride", self.stride, dims, 1))
        self._set("dilation", _ints(self, "dilation", self.dilation, dims, 1))
        if isinstance(self.padding, str):
            if self.padding not in ("same", "valid") or (self.padding == "same" and self.stride != (1,) * dims):
                raise _fail(self, "padding", self.padding, "a string must be 'valid', or 'same' with stride 1")
        else:
            self._set("padding", _ints(self, "padding", self.padding, dims, 0))

    @property
    def in_channels(self) -> int:
        return self.weight.shape[1] * self.groups

    def output_shape(self, shape: Shape) -> Shape:
        name, dims = type(self).__name__, self.DIMS
        if len(shape) != dims + 1 or shape[0] != self.in_channels:
            raise ValueError(f"{name} takes {self.in_channels} channels of {dims}-D maps; it gets shape {tuple(shape)}")
        kernel = self.weight.shape[2:]
        if self.padding == "same":
            spatial = tuple(shape[1:])
        else:
            padding = (0,) * dims if self.padding == "valid" else self.padding
            spatial = tuple(_window(n, k, s, p, d) for n, k, s, p, d in
                            zip(shape[1:], kernel, self.stride, padding, self.dilation))
        if min(spatial) < 1:
            raise ValueError(f"{name}: input {tuple(shape)} is smaller than its kernel {tuple(kernel)}")
        return (self.weight.shape[0], *spatial)


@dataclass(frozen=True, eq=False)
class Conv1d(_Conv):
    """PyTorch's Conv1d on one sample (C, L): weight [out, in/groups, k]."""

    DIMS: ClassVar[int] = 1


@dataclass(frozen=True, eq=False)
class Conv2d(_Conv):
    """PyTorch's Conv2d on one sample (C, H, W): weight [out, in/groups, kh, kw]."""

    DIMS: ClassVar[int] = 2


@dataclass(frozen=True, eq=False)
class _Pool2d(Node):
    kernel_size: Any
    stride: Any = None
    padding: Any = 0

    def __post_init__(self) -> None:
        self._set("kernel_size", _ints(self, "kernel_size", self.kernel_size, 2, 1))
        self._set("stride", _ints(self, "stride", self.kernel_size if self.stride is None else self.stride, 2, 1))
        self._set("padding", _ints(self, "padding", self.padding, 2, 0))
        if any(2 * p > k for p, k in zip(self.padding, self.kernel_size)):
            raise _fail(self, "padding", self.padding, f"is more than half the window {self.kernel_size}")

    def output_shape(self, shape: Shape) -> Shape:
        name = type(self).__name__
        if len(shape) != 3:
            raise ValueError(f"{name} takes (C, H, W); it gets shape {tuple(shape)}")
        spatial = tuple(_window(n, k, s, p) for n, k, s, p in zip(shape[1:], self.kernel_size, self.stride, self.padding))
        if min(spatial) < 1:
            raise ValueError(f"{name}: input {tuple(shape)} is smaller than its window {self.kernel_size}")
        return (shape[0], *spatial)


@dataclass(frozen=True, eq=False)
class SumPool2d(_Pool2d):
    """The sum over each window (zero padding)."""


@dataclass(frozen=True, eq=False)
class AvgPool2d(_Pool2d):
    """The mean over each window, padding counted (PyTorch's default, NIR's)."""


@dataclass(frozen=True, eq=False)
class Flatten(Node):
    """Dims ``start_dim`` .. ``end_dim`` of one sample (no batch axis; negative from the end) as one."""

    start_dim: int = 0
    end_dim: int = -1

    def __post_init__(self) -> None:
        self._set("start_dim", _int(self, "start_dim", self.start_dim))
        self._set("end_dim", _int(self, "end_dim", self.end_dim))

    def output_shape(self, shape: Shape) -> Shape:
        dims = len(shape)
        start = self.start_dim + dims if self.start_dim < 0 else self.start_dim
        end = self.end_dim + dims if self.end_dim < 0 else self.end_dim
        if not 0 <= start <= end < dims:
            raise ValueError(f"Flatten({self.start_dim}, {self.end_dim}) does not fit shape {tuple(shape)}")
        return (*shape[:start], math.prod(shape[start:end + 1]), *shape[end + 1:])


@dataclass(frozen=True, eq=False)
class CubaLIF(Node):
    """The spiking CUBA LIF of the module docstring (decays per step, units of the input current)."""

    current_decay: Param
    voltage_decay: Param
    threshold: Param
    reset: str = "zero"
    refractory_steps: int = 0
    v_leak: Param = 0.0
    v_reset: Param = 0.0
    bias: Param | None = None
    PER_NEURON: ClassVar[tuple[str, ...]] = ("current_decay", "voltage_decay", "threshold", "v_leak", "v_reset", "bias")

    def __post_init__(self) -> None:
        self._set("current_decay", _param(self, "current_decay", self.current_decay, 0.0, 1.0))
        self._set("voltage_decay", _param(self, "voltage_decay", self.voltage_decay, 0.0, 1.0))
        self._set("threshold", _param(self, "threshold", self.threshold, 0.0, low_open=True))
        if self.reset not in RESETS:
            raise _fail(self, "reset", self.reset, f"must be one of {', '.join(RESETS)}")
        self._set("refractory_steps", _int(self, "refractory_steps", self.refractory_steps, 0))
        self._set("v_leak", _param(self, "v_leak", self.v_leak))
        self._set("v_reset", _param(self, "v_reset", self.v_reset))
        if self.bias is not None:
            self._set("bias", _param(self, "bias", self.bias))

    def output_shape(self, shape: Shape) -> Shape:
        self._per_neuron(tuple(shape), self.PER_NEURON)
        return tuple(shape)


def LIF(voltage_decay: Param, threshold: Param, **fields: Any) -> CubaLIF:  # noqa: N802 - a node constructor
    """NIR's LIF: the `CubaLIF` with current_decay 1 (the current is the input of the step)."""
    return CubaLIF(1.0, voltage_decay, threshold, **fields)


def IF(threshold: Param, **fields: Any) -> CubaLIF:  # noqa: N802 - a node constructor
    """NIR's IF: the `CubaLIF` with current_decay 1 and voltage_decay 0 (no leak)."""
    return CubaLIF(1.0, 0.0, threshold, **fields)


@dataclass(frozen=True, eq=False)
class CubaLI(Node):
    """The non-spiking leaky readout of the module docstring; its output is the voltage."""

    current_decay: Param
    voltage_decay: Param
    gain: Param = 1.0
    v_leak: Param = 0.0
    bias: Param | None = None
    PER_NEURON: ClassVar[tuple[str, ...]] = ("current_decay", "voltage_decay", "gain", "v_leak", "bias")

    def __post_init__(self) -> None:
        self._set("current_decay", _param(self, "current_decay", self.current_decay, 0.0, 1.0))
        self._set("voltage_decay", _param(self, "voltage_decay", self.voltage_decay, 0.0, 1.0))
        self._set("gain", _param(self, "gain", self.gain))
        self._set("v_leak", _param(self, "v_leak", self.v_leak))
        if self.bias is not None:
            self._set("bias", _param(self, "bias", self.bias))

    def output_shape(self, shape: Shape) -> Shape:
        self._per_neuron(tuple(shape), self.PER_NEURON)
        return tuple(shape)


def LI(voltage_decay: Param, **fields: Any) -> CubaLI:  # noqa: N802 - a node constructor
    """NIR's LI: the `CubaLI` with current_decay 1."""
    return CubaLI(1.0, voltage_decay, **fields)


@dataclass(frozen=True, eq=False)
class Integrator(Node):
    """v[t] = v[t-1] + gain x[t], the output v (NIR's I: dv/dt = r x, gain = r dt)."""

    gain: Param = 1.0

    def __post_init__(self) -> None:
        self._set("gain", _param(self, "gain", self.gain))

    def output_shape(self, shape: Shape) -> Shape:
        self._per_neuron(tuple(shape), ("gain",))
        return tuple(shape)


@dataclass(frozen=True, eq=False)
class Threshold(Node):
    """1 where x > threshold, else 0 (NIR's Threshold, a Heaviside of x - threshold)."""

    threshold: Param

    def __post_init__(self) -> None:
        self._set("threshold", _param(self, "threshold", self.threshold))

    def output_shape(self, shape: Shape) -> Shape:
        self._per_neuron(tuple(shape), ("threshold",))
        return tuple(shape)


@dataclass(frozen=True, eq=False)
class Scale(Node):
    """y = scale x (one factor, or one per neuron)."""

    scale: Param

    def __post_init__(self) -> None:
        self._set("scale", _param(self, "scale", self.scale))

    def output_shape(self, shape: Shape) -> Shape:
        self._per_neuron(tuple(shape), ("scale",))
        return tuple(shape)


@dataclass(frozen=True, eq=False)
class Delay(Node):
    """y[t] = x[t - steps], zero before the first step: what makes a recurrent edge well defined."""

    steps: int = 1

    def __post_init__(self) -> None:
        self._set("steps", _int(self, "steps", self.steps, 1))


#: The one name -> class table of the node types: reading and writing (`Graph.to_data`, the mappers).
NODE_TYPES: dict[str, type[Node]] = {cls.__name__: cls for cls in (
    Input, Output, Affine, Conv1d, Conv2d, SumPool2d, AvgPool2d, Flatten, CubaLIF, CubaLI, Integrator, Threshold,
    Scale, Delay)}
#: The node types that hold state across timesteps (neurons): a tracer takes modules for them as leaves.
NEURONS = (CubaLIF, CubaLI, Integrator)
#: The node types that weight their input (synapses): Loihi's timing delays each by one step.
SYNAPSES = (Affine, Conv1d, Conv2d)


def node_fields(node: Node) -> dict[str, Any]:
    """The node's fields by name (arrays as they are)."""
    return {f.name: getattr(node, f.name) for f in dataclasses.fields(node)}


def _plain(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, tuple):
        return list(value)
    return value


@dataclass
class Graph:
    """Nodes by name and the edges [source, target] between them; ``metadata`` plain values (the
    normalization, dataset, T and encoding a file carries beside the network).

    Checked on construction: every edge joins two nodes, once; one `Input` (no incoming edge) and
    one `Output` (no outgoing edge); every node reached from the input and reaching the output; no
    cycle except through a `Delay` (a recurrent edge says so by its Delay). Raises `ValueError`
    naming the node or edge.
    """

    nodes: dict[str, Node]
    edges: list[tuple[str, str]]
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.nodes = dict(self.nodes)
        self.edges = [tuple(edge) for edge in self.edges]
        for name, node in self.nodes.items():
            if not isinstance(name, str) or not name:
                raise ValueError(f"Graph.nodes: node name {name!r} is not a non-empty string")
            if not isinstance(node, Node):
                raise ValueError(f"Graph.nodes[{name!r}] is a {type(node).__name__}, not a node of {', '.join(NODE_TYPES)}")
        seen = set()
        for edge in self.edges:
            if len(edge) != 2 or any(end not in self.nodes for end in edge):
                raise ValueError(f"Graph.edges: {edge!r} does not join two of the graph's nodes")
            if edge in seen:
                raise ValueError(f"Graph.edges: {edge[0]!r} -> {edge[1]!r} appears twice")
            seen.add(edge)
        for kind in (Input, Output):
            names = [n for n, node in self.nodes.items() if isinstance(node, kind)]
            if len(names) != 1:
                raise ValueError(f"Graph.nodes: {len(names)} {kind.__name__} nodes; a graph has exactly one")
        if self.inputs(self.input):
            raise ValueError(f"Graph.edges: an edge leads into the Input node {self.input!r}")
        if self.outputs(self.output):
            raise ValueError(f"Graph.edges: an edge leaves the Output node {self.output!r}")
        self._order = self._topological()
        reached = self._closure(self.input, lambda n: self.outputs(n))
        live = self._closure(self.output, lambda n: self.inputs(n))
        for name in self._order:
            if name not in reached:
                raise ValueError(f"Graph: node {name!r} is not reached from the input")
            if name not in live:
                raise ValueError(f"Graph: node {name!r} does not reach the output")

    @staticmethod
    def _closure(start: str, step) -> set[str]:
        found, todo = {start}, [start]
        while todo:
            for nxt in step(todo.pop()):
                if nxt not in found:
                    found.add(nxt)
                    todo.append(nxt)
        return found

    @property
    def input(self) -> str:
        return next(n for n, node in self.nodes.items() if isinstance(node, Input))

    @property
    def output(self) -> str:
        return next(n for n, node in self.nodes.items() if isinstance(node, Output))

    def inputs(self, name: str) -> list[str]:
        """The nodes whose outputs ``name`` sums, in edge order."""
        return [a for a, b in self.edges if b == name]

    def outputs(self, name: str) -> list[str]:
        return [b for a, b in self.edges if a == name]

    def _kahn(self, edges: list[tuple[str, str]]) -> list[str]:
        pending = {n: 0 for n in self.nodes}
        for _, b in edges:
            pending[b] += 1
        ready = [n for n in self.nodes if pending[n] == 0]
        order: list[str] = []
        while ready:
            node = ready.pop(0)
            order.append(node)
            for a, b in edges:
                if a == node:
                    pending[b] -= 1
                    if pending[b] == 0:
                        ready.append(b)
        return order

    def _topological(self) -> list[str]:
        order = self._kahn(self.edges)
        if len(order) == len(self.nodes):
            return order
        forward = [(a, b) for a, b in self.edges if not isinstance(self.nodes[a], Delay)]
        order = self._kahn(forward)
        if len(order) != len(self.nodes):
            stuck = [n for n in self.nodes if n not in order]
            raise ValueError(f"Graph: a cycle through {', '.join(map(repr, stuck[:3]))} has no Delay node; "
                             "a recurrent edge must pass through a Delay")
        return order

    def order(self) -> list[str]:
        """Node names so that every edge goes forward, recurrent edges (out of a Delay) aside;
        stable in the order of ``nodes``."""
        return list(self._order)

    def recurrent_edges(self) -> list[tuple[str, str]]:
        """The edges that go backward in `order` (each leaves a Delay)."""
        position = {n: i for i, n in enumerate(self._order)}
        return [(a, b) for a, b in self.edges if position[a] >= position[b]]

    def shapes(self) -> dict[str, Shape]:
        """One sample's output shape per node; ValueError naming the node where shapes do not fit."""
        shapes: dict[str, Shape] = {}
        for name in self._order:
            node = self.nodes[name]
            incoming = {shapes[s] for s in self.inputs(name) if s in shapes}  # a recurrent source comes later
            if len(incoming) > 1:
                raise ValueError(f"Graph: node {name!r} sums inputs of different shapes {sorted(incoming)}")
            shape = incoming.pop() if incoming else ()
            try:
                shapes[name] = tuple(int(n) for n in node.output_shape(shape))
            except ValueError as err:
                raise ValueError(f"Graph: node {name!r}: {err}") from None
        for a, b in self.recurrent_edges():
            if shapes[a] != shapes[self.inputs(b)[0]]:
                raise ValueError(f"Graph: recurrent edge {a!r} -> {b!r} brings shape {shapes[a]} into {b!r}")
        return shapes

    def to_data(self, weights: bool = True) -> dict[str, Any]:
        """The graph as plain types (lists, floats, strings). With ``weights=False`` the fields a
        built module holds as its weights (`Node.WEIGHTS`) are written as ``{"shape": [...]}``:
        a checkpoint keeps them in its state dict."""
        nodes = {}
        for name, node in self.nodes.items():
            data: dict[str, Any] = {"type": type(node).__name__}
            for key, value in node_fields(node).items():
                if not weights and key in node.WEIGHTS and value is not None:
                    value = {"shape": list(value.shape)}
                data[key] = _plain(value)
            nodes[name] = data
        return {"nodes": nodes, "edges": [list(edge) for edge in self.edges], "metadata": dict(self.metadata)}

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> "Graph":
        """The graph of `to_data`'s plain types; weights written as ``{"shape": ...}`` are zeros.

        Raises:
            ValueError: an unknown node type or field, or a value a node refuses (named).
        """
        if not isinstance(data, dict) or not isinstance(data.get("nodes"), dict):
            raise ValueError("Graph data needs a 'nodes' mapping and an 'edges' list")
        nodes = {}
        for name, raw in data["nodes"].items():
            raw = dict(raw) if isinstance(raw, dict) else {}
            kind = raw.pop("type", None)
            if kind not in NODE_TYPES:
                raise ValueError(f"Graph data: node {name!r} has type {kind!r}; known: {', '.join(NODE_TYPES)}")
            cls_ = NODE_TYPES[kind]
            known = {f.name for f in dataclasses.fields(cls_)}
            if set(raw) - known:
                raise ValueError(f"Graph data: node {name!r} ({kind}) has no field {', '.join(sorted(set(raw) - known))}")
            for key in cls_.WEIGHTS:
                if isinstance(raw.get(key), dict):
                    raw[key] = np.zeros(_shape(cls_, key, raw[key].get("shape")))
            nodes[name] = cls_(**raw)
        edges = data.get("edges", [])
        if not isinstance(edges, (list, tuple)) or any(not isinstance(e, (list, tuple)) for e in edges):
            raise ValueError("Graph data: 'edges' must be a list of [source, target]")
        return cls(nodes, [tuple(e) for e in edges], dict(data.get("metadata") or {}))


__all__ = ["NODE_TYPES", "NEURONS", "SYNAPSES", "Affine", "AvgPool2d", "Conv1d", "Conv2d", "CubaLI", "CubaLIF",
           "Delay", "Flatten", "Graph", "IF", "Input", "Integrator", "LI", "LIF", "Node", "Output", "Scale", "Shape",
           "SumPool2d", "Threshold", "node_fields"]
