"""The graph: nodes by name and the edges between them, its ends (Input, Output) and its Delay
nodes, and the one name -> class table the plain data is read and written through."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from snnpipe.models.ir.node import NODE_TYPES, Node, Shape, check_int, check_shape, node_fields, register_node


@register_node
@dataclass(frozen=True, eq=False)
class Input(Node):
    shape: Shape

    def __post_init__(self) -> None:
        self._set("shape", check_shape(self, "shape", self.shape))

    def output_shape(self, shape: Shape) -> Shape:
        return self.shape


@register_node
@dataclass(frozen=True, eq=False)
class Output(Node):
    shape: Shape

    def __post_init__(self) -> None:
        self._set("shape", check_shape(self, "shape", self.shape))

    def output_shape(self, shape: Shape) -> Shape:
        if tuple(shape) != self.shape:
            raise ValueError(f"Output.shape={self.shape}: the graph gives {tuple(shape)}")
        return self.shape


@register_node
@dataclass(frozen=True, eq=False)
class Delay(Node):
    """y[t] = x[t - steps], zero before the first step: what makes a recurrent edge well defined."""

    steps: int = 1

    def __post_init__(self) -> None:
        self._set("steps", check_int(self, "steps", self.steps, 1))


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

    def _reaches(self, start: str, goal: str) -> bool:
        seen, todo = set(), [start]
        while todo:
            node = todo.pop()
            if node == goal:
                return True
            if node not in seen:
                seen.add(node)
                todo.extend(self.outputs(node))
        return False

    def _topological(self) -> list[str]:
        order = self._kahn(self.edges)
        if len(order) == len(self.nodes):
            return order
        # cut only the edges out of a Delay that close a cycle (b leads back to the Delay): a Delay in front of a
        # feed-forward node keeps that node after it
        forward = [(a, b) for a, b in self.edges if not (isinstance(self.nodes[a], Delay) and self._reaches(b, a))]
        order = self._kahn(forward)
        if len(order) != len(self.nodes):
            stuck = set(self.nodes) - set(order)  # on a cycle, or after one: peel off what leads to no cycle
            while ends := {a for a in stuck if not any(x == a and b in stuck for x, b in forward)}:
                stuck -= ends
            stuck = [n for n in self.nodes if n in stuck]
            raise ValueError(f"Graph: a cycle through {', '.join(map(repr, stuck[:3]))} has no Delay node; "
                             "a recurrent edge must pass through a Delay")
        return order

    def order(self) -> list[str]:
        """Node names so that every edge goes forward, recurrent edges (out of a Delay) aside;
        stable in the order of ``nodes``."""
        return list(self._order)

    def recurrent_edges(self) -> list[tuple[str, str]]:
        """The edges that go backward in `order`: out of a Delay, closing a cycle."""
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
                    raw[key] = np.zeros(check_shape(cls_, key, raw[key].get("shape")))
            nodes[name] = cls_(**raw)
        edges = data.get("edges", [])
        if not isinstance(edges, (list, tuple)) or any(not isinstance(e, (list, tuple)) for e in edges):
            raise ValueError("Graph data: 'edges' must be a list of [source, target]")
        return cls(nodes, [tuple(e) for e in edges], dict(data.get("metadata") or {}))
