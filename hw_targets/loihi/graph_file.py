"""Write and read a `LoihiGraph`: the HDF5 format ``snnpipe.loihi.graph/1``.

netx files (`netx`) are chains; this format is a graph, which ``lava_runner.py`` builds as a Lava
process graph (lava-dl's netx does not read it). Layout (all shapes and (height, width) pairs in
torch's order, (C, H, W); the runner reverses them to Lava's (W, H, C))::

    /                attrs: format = "snnpipe.loihi.graph/1", input_bits (0: binary spikes),
                            input_exp (graded input x = x_q 2^input_exp), and the exporter's own
                            (snnpipe_version, timesteps, encoding, steps)
    /input/shape     (C, H, W) or (n,)
    /node/<i>        i = 0 .. N-1 in topological order; the last is the output
        attrs        name, relay (bool), readout (bool)
        shape        the neurons, (C, H, W) or (n,)
        bias         optional, int16 (out_channels,): bias mantissas, exponent 6 (netx's)
        neuron/      type "CUBA", iDecay, vDecay, vThMant, refDelay, gradedSpike (netx's fields)
        connection/<j>   j = 0 .. M-1, summed into the node's neurons
            attrs    source ("input" or a node's name), name (module path), kind ("dense"|"conv"),
                     flatten (bool: the source's (C, H, W) is flattened in C order first)
            in_shape the source's shape as this connection reads it
            weight   int16, (out, in) or (out, in/groups, kh, kw): 8-bit mantissa << 1 (netx's scheme)
            stride, padding, dilation (2,), groups    conv only

Version 1 is the first. A reader refuses a file whose ``format`` is another version or kind.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import h5py
import numpy as np

from snnpipe.errors import SnnpipeError
from snnpipe.hw_targets.hdf5_file import open_hdf5
from snnpipe.hw_targets.isolated import in_child
from snnpipe.hw_targets.loihi.graph import Connection, GraphNode, LoihiGraph
from snnpipe.hw_targets.loihi.netx import READ_TIMEOUT, _read_netx, _read_neuron, _write_neuron, read_isolated

FORMAT = "snnpipe.loihi.graph/1"
_CONV_FIELDS = ("stride", "padding", "dilation")


class GraphFileError(SnnpipeError):
    """A graph file that does not exist, is damaged, or is not ``snnpipe.loihi.graph/1``."""


def write_graph(graph: LoihiGraph, path: str | Path, attrs: dict[str, Any] | None = None) -> None:
    """Write ``graph`` to ``path`` (overwritten). ``attrs`` go to the file's root attributes.

    The writing runs in a forked child, as `netx.write_netx`'s: onto a full disk h5py crashes.

    Raises:
        OSError: the file could not be written.
    """
    in_child(_write_graph, graph, path, attrs, timeout=READ_TIMEOUT, doing="writing",
             failure=lambda reason: OSError(f"writing {path} failed: {reason}"))


def _write_graph(graph: LoihiGraph, path: str | Path, attrs: dict[str, Any] | None) -> None:
    with h5py.File(path, "w") as handle:
        handle.attrs["format"] = FORMAT
        handle.attrs["input_bits"] = graph.input_bits
        handle.attrs["input_exp"] = graph.input_exp
        for key, value in (attrs or {}).items():
            handle.attrs[key] = value
        handle.create_group("input").create_dataset("shape", data=np.array(graph.input_shape))
        root = handle.create_group("node")
        for i, node in enumerate(graph.nodes):
            group = root.create_group(str(i))
            group.attrs["name"] = node.name
            group.attrs["relay"] = node.relay
            group.create_dataset("shape", data=np.array(node.out_shape))
            if node.bias is not None:
                group.create_dataset("bias", data=node.bias.astype(np.int16))
            _write_neuron(group, node.neuron)
            connections = group.create_group("connection")
            for j, connection in enumerate(node.connections):
                sub = connections.create_group(str(j))
                for key in ("source", "name", "kind", "flatten"):
                    sub.attrs[key] = getattr(connection, key)
                sub.create_dataset("in_shape", data=np.array(connection.in_shape))
                sub.create_dataset("weight", data=connection.weight.astype(np.int16))
                if connection.kind == "conv":
                    for key in _CONV_FIELDS:
                        sub.create_dataset(key, data=np.array(getattr(connection, key)))
                    sub.create_dataset("groups", data=connection.groups)


def read_graph(path: str | Path) -> tuple[LoihiGraph, dict[str, Any]]:
    """The graph in a file written by `write_graph`, and the file's root attributes (read in a
    forked child, `netx.read_isolated`).

    Raises:
        GraphFileError: a missing or damaged file, another format, or values the graph refuses.
    """
    return read_isolated(path, _read_graph, GraphFileError, "Loihi graph file")


#: What `read_loihi` reads, said where it cannot read a file (which may come from lava-dl, not snnpipe).
READ_LOIHI_HINT = ("snnpipe runs netx files of input, flatten, dense and conv layers with CUBA neurons (snnpipe's "
                   "export --target loihi or lava-dl's export_hdf5) and snnpipe's Loihi graph files")


def read_loihi(path: str | Path) -> tuple[LoihiGraph, dict[str, Any]]:
    """Either kind of Loihi export as a graph: a graph file, or a netx file's chain
    (`LoihiGraph.from_network`); the file's ``format`` attribute decides.

    Raises:
        GraphFileError: a missing or damaged file, or one of neither kind.
    """
    return read_isolated(path, _read_either, GraphFileError, "Loihi file", READ_LOIHI_HINT)


def _read_either(path: Path) -> tuple[LoihiGraph, dict[str, Any]]:
    with open_hdf5(path) as handle:
        graph = _text(handle.attrs.get("format", "")) == FORMAT
    if graph:
        return _read_graph(path)
    net, attrs = _read_netx(path)
    return LoihiGraph.from_network(net), attrs


def _text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _read_graph(path: Path) -> tuple[LoihiGraph, dict[str, Any]]:
    with open_hdf5(path) as handle:
        attrs = {k: (v.item() if isinstance(v, np.generic) else v) for k, v in handle.attrs.items()}
        if _text(attrs.get("format")) != FORMAT:
            raise ValueError(f"its format is {attrs.get('format')!r}, not {FORMAT!r}")
        nodes = []
        root = handle["node"]
        for i in range(len(root)):
            group = root[str(i)]
            connections = []
            for j in range(len(group["connection"])):
                sub = group["connection"][str(j)]
                kind = _text(sub.attrs["kind"])
                geometry: dict[str, Any] = {}
                if kind == "conv":
                    geometry = {key: tuple(int(v) for v in sub[key][()]) for key in _CONV_FIELDS}
                    geometry["groups"] = int(sub["groups"][()])
                connections.append(Connection(
                    _text(sub.attrs["source"]), _text(sub.attrs["name"]), kind,
                    tuple(int(n) for n in sub["in_shape"][()]), sub["weight"][()],
                    bool(sub.attrs["flatten"]), **geometry))
            nodes.append(GraphNode(_text(group.attrs["name"]), tuple(int(n) for n in group["shape"][()]),
                                   _read_neuron(group), group["bias"][()] if "bias" in group else None, connections,
                                   relay=bool(group.attrs["relay"])))
        graph = LoihiGraph(tuple(int(n) for n in handle["input"]["shape"][()]), nodes,
                           int(attrs["input_bits"]), int(attrs["input_exp"]))
    return graph, attrs
