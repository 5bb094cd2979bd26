"""Write and read a `LoihiGraph`: the HDF5 format ``snnpipe.loihi.graph/1``.

netx files (`netx`) are chains; this format is a graph, which ``lava_runner.py`` builds as a Lava
process graph (lava-dl's netx does not read it). This docstring is the whole contract: the layout,
then how a runtime must build and run the network to give the spikes snnpipe verified (the simulator,
`simulator`, and Lava, ``lava_runner.py``, agree bit for bit; lava-nc 0.10.0, lava-dl 0.6.0).

Layout (all shapes and (height, width) pairs in torch's order, (C, H, W); Lava's is (W, H, C))::

    /                attrs: format = "snnpipe.loihi.graph/1", input_bits (0: binary spikes),
                            input_exp (graded input x = x_q 2^input_exp), and the exporter's own:
                            snnpipe_version, timesteps (T), encoding, steps (T + depth), and the
                            data (dataset, data_seed, mean, std: the direct encoding's normalization)
    /input/shape     (C, H, W) or (n,)
    /node/<i>        i = 0 .. N-1 in topological order; the last is the output
        attrs        name, relay (bool: a delay relay, below), readout (bool: the node is the readout)
        shape        the neurons, (C, H, W) or (n,)
        bias         optional, int16 (out_channels,): bias mantissas, exponent 6 (netx's)
        neuron/      scalar datasets (shape ()): type (the string "CUBA"), iDecay, vDecay, vThMant,
                     refDelay (integers), gradedSpike (bool) (netx's fields)
        connection/<j>   j = 0 .. M-1, summed into the node's neurons
            attrs    source ("input" or a node's name), name (module path), kind ("dense"|"conv"),
                     flatten (bool: the source's (C, H, W) is flattened in C order first)
            in_shape the source's shape as this connection reads it
            weight   int16, (out, in) or (out, in/groups, kh, kw): 8-bit mantissa << 1, even
                     integers in [-256, 254] (netx's scheme), in *weight units*
            stride, padding, dilation (2,), groups (scalar)    conv only, datasets

What ``attrs`` lists are HDF5 attributes, the rest datasets. The reader checks that each
connection maps its source's shape to its node's ``shape`` exactly: ``flatten`` and dense give
(out,) from ``in_shape`` = the source's (flattened) shape; a conv's (C_out, H', W') with, per axis,
``H' = (H + 2 padding - dilation (kh - 1) - 1) // stride + 1`` (torch's ``Conv2d``; padding at most
the input's size), C_out = the weight's first axis and in/groups its second.

Units: ``a_in`` (a neuron's synaptic input) is in weight units; u and v are in *state units*,
2^-6 of a weight unit (Lava shifts the input, the threshold and netx's bias by 6 bits).

**Neurons** (Lava ``LIF``, ``lava/proc/lif/models.py``, ``PyLifModelBitAcc``), one per element of
``shape``, with netx's mapping (``Network.get_neuron_params``): ``du = iDecay - 1`` (Lava adds its
``ds_offset`` 1 back: the current keeps ``4096 - iDecay``/4096 of itself), ``dv = vDecay``,
``vth = vThMant`` (compared after Lava's ``vth_shift`` of 6: spike where ``v > vThMant << 6``),
``bias_mant = bias[c]`` broadcast over the channel c's neurons (the first torch axis, Lava's last)
with ``bias_exp = 6``. Per step, with ``rtz(p / 4096) = sign(p) (|p| >> 12)`` (toward zero)::

    u = wrap24(rtz(u (4096 - iDecay) / 4096) + (a_in << 6))
    v = clip(rtz(v (4096 - vDecay) / 4096) + u + (bias << 6), -(2^23 - 1), 2^23 - 1)
    s = v > (vThMant << 6);  v = 0 where s

``wrap24`` (Lava's one wrap of u): a value above 2^23 loses 2^24, else one at or below -2^23 gains
2^24. Lava computes ``a_in << 6`` and these sums in int32, which wrap at 2^31 where a current can
reach it (the simulator emulates that; `fixed_point` has every constant with its Lava source).
``refDelay`` is written as 1 and ``gradedSpike`` as false: netx's ``LIF`` has no refractory period
(the exporter refuses refractory neurons) and spikes are binary.

A ``readout`` node (iDecay 4096, vDecay 0, vThMant 131071; always the last node) integrates: the
network's output is its v after the last step, and the class of a sample is the argmax of that v
over the readout's neurons, the lowest index on ties (without a readout, the argmax of the last
node's spike counts over all steps). It is an ordinary ``LIF``: it spikes, and its v resets to 0,
where v > 131071 << 6 = 8,388,544, which v (clipped at 2^23 - 1 = 8,388,607) can reach; the
threshold cannot be raised past the 17-bit mantissa. The exporter keeps the readout's calibrated
range within 2^16 weight units (``quantize.READOUT_HEADROOM``: |v| <= 2^22, half the threshold), and
the simulator runs the same rule (its report counts every saturated v), so Lava and the simulator
agree even on a sample that drives a readout to spike.

A ``relay`` node is a delay the exporter inserted to align a shortcut with its block (graph.py,
``relay_node``), not a layer of the model: one connection from its source, the identity (a
depthwise 1x1 conv, groups = C and weight 2 per channel, or a dense ``2 I``), into neurons of the
source's shape with iDecay 4096, vDecay 4095, vThMant 1 (u = a_in << 6 = 128 > 64 on a spike; v
keeps nothing below 4096). It fires at step t + 1 exactly where its source fired at step t. A
builder builds it as any other node; the reader refuses a relay of another shape or neuron.

**Connections** (``lava_runner.py``, ``build_graph``): each is a Lava process from the source's
``s_out`` (the input's source process, or the source node's ``LIF``) into the node's ``a_in``;
Lava adds the messages of every connection into one ``a_in``. From ``input`` a connection carries
``num_message_bits = input_bits`` (graded spikes, multiplied in), else 0 (binary spikes).

- ``dense``: ``Dense(weights=w_lava, weight_exp=-scale_bits, num_weight_bits=bits,
  num_message_bits=...)``, no ``sign_mode`` (Lava derives it), where ``w_lava, bits, weight_exp, _ =
  lava.lib.dl.netx.utils.optimize_weight_bits(weight)``, as netx builds its dense blocks. That
  function, for weights ``w``: ``top, bottom = max w, min w``; inhibitory if ``top < 0`` (scale
  ``-256 / bottom``), excitatory if ``bottom >= 0`` (scale ``255 / top``), else mixed (scale
  ``min(127 / top, -128 / bottom)``, signed = 1); ``scale_bits = floor(log2 scale) + signed``;
  ``n`` = the largest n <= 8 with every ``w / 2^n`` an integer, less signed; ``bits = 8 -
  scale_bits - n``; ``w_lava = w << scale_bits``. Lava's ``PyDenseModelBitAcc`` then takes the sign
  mode of ``w_lava`` (excitatory if its min >= 0, inhibitory if its max <= 0, else mixed), clips
  to 8 bits (mixed [-256, 255], excitatory [0, 255], inhibitory the negation of that) and drops
  ``8 - bits + mixed`` low bits (of ``-w_lava`` when inhibitory), and sends
  ``a_in = (sum_j w_lava[i, j] s_j) >> scale_bits`` (an arithmetic, flooring shift; ``s_j`` the
  spikes, or the graded integers). For mixed-sign weights this is exactly ``sum_j weight[i, j] s_j``;
  a layer of one sign can lose low bits (`fixed_point.dense_synapse_format` replays it and says
  ``exact``). A connection with ``flatten`` reads its (C, H, W) source flattened in C order (in
  Lava ``s_out.transpose([2, 1, 0]).flatten()``). All-zero weights are never written (netx divides
  by the largest).
- ``conv``: ``Conv(weight=weight[:, :, ::-1, ::-1].transpose(0, 3, 2, 1), input_shape=(W, H, C),
  padding, stride, dilation reversed to (W, H), groups, num_message_bits=...)`` with the default
  ``weight_exp`` 0 and ``num_weight_bits`` 8 (as netx's ``create_conv``): ``a_in`` is torch's
  ``conv2d(s, weight)`` (cross-correlation) with the file's integers unchanged, wrapped to 24-bit
  signed (``PyConvModelFixed``'s ``signed_clamp``).

**Input.** Binary spikes (``input_bits = 0``) as given. Graded (``input_bits = b >= 2``, direct
coding): the model's analog input x (the normalized image ``(pixel - mean) / std``, the same at every
step) is sent as the integers ``x_q = clip(round(x / 2^input_exp), -2^(b-1), 2^(b-1) - 1)``, with
``round`` to the nearest, ties to even (torch's and numpy's ``round``); for the default b = 8 the
clip is to [-128, 127]. The clip matters: the pixels' range sets ``input_exp``, then the exporter may
raise it, but a test image can exceed its calibration, and without the clip the first layer's u
differs from the exported network's.

**Timing.** Every ``Dense``/``Conv`` delays by one step: a node's depth is its sources' depth + 1
(the input's is 0; every connection into a node gives the same depth, the relays see to it). Lava
steps count from 1; input step t (t = 0 .. T-1) is sent by the input's source at Lava step t + 1,
and a node of depth d integrates it at Lava step t + 1 + d. Run ``steps = T + depth(last node)``
Lava steps (the root's ``steps``), the input all zeros after its T steps, each sample from rest:
u, v and every synapse's buffered output (``a_buff`` of ``Dense``, ``a_buf`` of ``Conv``) 0. The
simulator's step k (from 0) is Lava's step k + 1.

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
