"""The base of the graph's nodes, and the checks their fields go through (`ValueError` naming the
field and the value)."""

from __future__ import annotations

import dataclasses
import math
from typing import Any, ClassVar, Iterable, Union

import numpy as np

from snnpipe.registry import register_into

Shape = tuple[int, ...]
Param = Union[float, np.ndarray]


def field_error(node: object, name: str, value: Any, why: str) -> ValueError:
    """``Class.field=value: why`` on one line (``node`` a node or its class)."""
    text = " ".join(repr(value).split())
    text = text if len(text) <= 60 else text[:57] + "..."
    owner = node.__name__ if isinstance(node, type) else type(node).__name__
    return ValueError(f"{owner}.{name}={text}: {why}")


def check_array(node: object, name: str, value: Any, ndim: int | None = None) -> np.ndarray:
    """A finite float64 array, read-only (nodes are values)."""
    try:
        raw = np.asarray(value)
        if raw.dtype.kind not in "biuf":  # complex would lose its imaginary part; strings, objects
            raise TypeError
        array = np.array(raw, dtype=np.float64)
    except (TypeError, ValueError):
        raise field_error(node, name, value, "must be an array of real numbers") from None
    if ndim is not None and array.ndim != ndim:
        raise field_error(node, name, value, f"must be {ndim}-D, not {array.ndim}-D")
    if array.size == 0 or not np.all(np.isfinite(array)):
        raise field_error(node, name, value, "must be finite and not empty")
    array.flags.writeable = False
    return array


def check_param(node: object, name: str, value: Any, low: float = -math.inf, high: float = math.inf,
           low_open: bool = False) -> Param:
    """A finite float, or a float array of per-neuron values, within [low, high] (``low_open``: > low)."""
    scalar = np.ndim(value) == 0
    array = check_array(node, name, value)
    if np.any(array > high) or np.any(array <= low if low_open else array < low):
        bound = f"> {low:g}" if low_open else f">= {low:g}"
        where = f"in [{low:g}, {high:g}]" if high < math.inf else bound
        raise field_error(node, name, value, f"must lie {where}")
    return float(array) if scalar else array


def check_ints(node: object, name: str, value: Any, count: int, minimum: int) -> tuple[int, ...]:
    """One integer or ``count`` of them, each >= ``minimum``, as a tuple of ``count``."""
    values = np.atleast_1d(np.asarray(value))
    if values.dtype.kind not in "fiu" or values.ndim != 1 or len(values) not in (1, count) \
            or not np.all(np.isfinite(values)) or np.any(values != np.round(values)) or np.any(values < minimum):
        raise field_error(node, name, value, f"must be 1 or {count} integers >= {minimum}")
    ints = tuple(int(v) for v in values)
    return ints * count if len(ints) == 1 else ints


def check_int(node: object, name: str, value: Any, minimum: int | None = None) -> int:
    number = np.asarray(value)
    if number.dtype.kind not in "iuf" or number.ndim != 0 or not np.isfinite(number) or number != np.round(number):
        raise field_error(node, name, value, "must be an integer")
    if minimum is not None and int(value) < minimum:
        raise field_error(node, name, value, f"must be >= {minimum}")
    return int(value)


def check_shape(node: object, name: str, value: Any) -> Shape:
    values = np.atleast_1d(np.asarray(value))
    if values.dtype.kind not in "fiu" or values.ndim != 1 or np.any(values != np.round(values)) or np.any(values < 1):
        raise field_error(node, name, value, "must be positive integers (one sample's shape)")
    return tuple(int(v) for v in values)


def window_length(size: int, kernel: int, stride: int, padding: int, dilation: int = 1) -> int:
    """Output length of a convolution or pooling window: floor((n + 2p - d(k-1) - 1) / s) + 1."""
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


class Node:
    """Base of the node classes: `output_shape` of one sample, and the fields as plain data."""

    #: Array fields that a built module holds as its weights: `Graph.to_data` can leave them out.
    WEIGHTS: ClassVar[tuple[str, ...]] = ()
    #: ``synapse`` (weights its input: Loihi's timing delays it), ``neuron`` (holds state across
    #: timesteps), or ``""``.
    ROLE: ClassVar[str] = ""

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
                    raise field_error(self, name, value.shape, f"per-neuron values do not fit the layer's shape {shape}") from None


def node_fields(node: Node) -> dict[str, Any]:
    """The node's fields by name (arrays as they are)."""
    return {f.name: getattr(node, f.name) for f in dataclasses.fields(node)}


#: The one name -> class table of the node types: reading and writing (`Graph.to_data`, the mappers).
NODE_TYPES: dict[str, type[Node]] = {}


def register_node(cls: type[Node]) -> type[Node]:
    """Class decorator: a node type under its class name in `NODE_TYPES` (a name taken is refused)."""
    return register_into(NODE_TYPES, cls.__name__, "graph node type")(cls)
