"""Run a netx file or a Loihi graph file in Lava's fixed-point CPU simulation; save every layer's spikes (and u, v).

This script runs in the Lava environment (Python 3.10, lava-dl 0.6.0, lava-nc 0.10.0), never inside
snnpipe: `lava_bridge` starts it as a subprocess with file paths and reads back an .npz::

    <lava python> lava_runner.py NET.h5 INPUT.npz OUTPUT.npz [--state=all|last]

INPUT.npz holds ``x``: (N, steps, C, H, W) input, binary spikes or graded integers. The network is
built once: a netx file with ``lava.lib.dl.netx.hdf5.Network``; a graph file (root attribute
``format`` = ``snnpipe.loihi.graph/1``, `graph_file`) by `build_graph`, as a process graph of Lava's
own ``Dense``, ``Conv`` and ``LIF``:

- each node is one ``LIF`` (``du = iDecay - 1``, ``dv = vDecay``, ``vth = vThMant``, ``bias_exp = 6``:
  netx's mapping, ``Network.get_neuron_params``), its bias broadcast per channel as netx does;
- each connection is a ``Dense`` (weights through netx's ``optimize_weight_bits``, as netx builds
  its dense blocks) or a ``Conv`` (kernel flipped and put in Lava's (out, W, H, in) order, as netx's
  ``create_conv``) from its source's ``s_out`` (through ``transpose([2, 1, 0]).flatten()`` where it
  flattens an image, as netx connects a flatten) into the node's ``a_in``; several connections into
  one ``a_in`` are summed by Lava;
- connections from the input carry ``num_message_bits = input_bits`` (graded spikes) when the file
  says so.

A ``RingBuffer`` source feeds the N samples one after another, ``steps`` steps each, and between
samples every neuron's u and v and every synapse's buffered output (``a_buff`` of ``Dense``,
``a_buf`` of ``Conv``) are set back to 0, so each sample starts from rest as in a fresh network. It
runs under ``Loihi2SimCfg(select_tag="fixed_pt")``.

OUTPUT.npz holds, per layer i (netx's blocks, or the graph's nodes, in order), ``spikes_i``:
(N, steps, *shape) uint8 with shape in (C, H, W) order, and with ``--state=all`` (every layer) or
``--state=last`` (the last layer) ``u_i`` and ``v_i`` (int64) after every step, recorded with
``Monitor`` probes; plus ``seconds_build`` (network and probes) and ``seconds_run`` (compile and run,
all samples).
"""

import sys
import time

import numpy as np

GRAPH_FORMAT = "snnpipe.loihi.graph/1"


def _text(value):
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _lava_shape(shape):
    return tuple(int(n) for n in shape[::-1])  # torch's (C, H, W) -> Lava's (x, y, z) = (W, H, C)


def build_netx(path, source):
    """The netx network fed by ``source``; returns [(out port, neuron, synapses)] per layer and the
    process to run."""
    from lava.lib.dl import netx

    net = netx.hdf5.Network(net_config=path)
    source.s_out.connect(net.inp)
    return [(layer.out, layer.neuron, [layer.synapse]) for layer in net.layers], net


def build_graph(path, source):
    """The graph file's processes fed by ``source`` (module docstring); returns [(out port, neuron,
    synapses)] per node and a process to run."""
    import h5py
    from lava.lib.dl.netx.utils import optimize_weight_bits
    from lava.proc.conv.process import Conv
    from lava.proc.dense.process import Dense
    from lava.proc.lif.process import LIF

    layers = []
    with h5py.File(path, "r") as handle:
        bits = int(handle.attrs["input_bits"])
        ports = {"input": (source.s_out, tuple(int(n) for n in handle["input"]["shape"][()]))}
        for i in range(len(handle["node"])):
            group = handle["node"][str(i)]
            shape = tuple(int(n) for n in group["shape"][()])
            neuron_config = group["neuron"]
            params = {"shape": _lava_shape(shape), "vth": int(neuron_config["vThMant"][()]),
                      "du": int(neuron_config["iDecay"][()]) - 1, "dv": int(neuron_config["vDecay"][()]), "bias_exp": 6}
            if "bias" in group:
                bias = group["bias"][()].astype(np.int32)
                bias_mant = np.zeros(params["shape"], dtype=np.int32)
                bias_mant[...] = bias  # per channel, the last of Lava's axes (netx's AbstractBlock._neuron)
                params["bias_mant"] = bias_mant
            neuron = LIF(**params)
            synapses = []
            for j in range(len(group["connection"])):
                conn = group["connection"][str(j)]
                source_name = _text(conn.attrs["source"])
                port, source_shape = ports[source_name]
                message_bits = bits if source_name == "input" else 0
                weight = conn["weight"][()].astype(np.int64)
                if _text(conn.attrs["kind"]) == "dense":
                    weight, num_weight_bits, weight_exp, _ = optimize_weight_bits(weight)
                    synapse = Dense(weights=weight, weight_exp=weight_exp, num_weight_bits=num_weight_bits,
                                    num_message_bits=message_bits)
                    if len(source_shape) == 3:
                        port = port.transpose([2, 1, 0]).flatten()
                else:
                    kernel = weight[:, :, ::-1, ::-1].transpose((0, 3, 2, 1))
                    synapse = Conv(weight=kernel, input_shape=_lava_shape(source_shape),
                                   padding=tuple(conn["padding"][()][::-1]), stride=tuple(conn["stride"][()][::-1]),
                                   dilation=tuple(conn["dilation"][()][::-1]), groups=int(conn["groups"][()]),
                                   num_message_bits=message_bits)
                port.connect(synapse.s_in)
                synapse.a_out.connect(neuron.a_in)
                synapses.append(synapse)
            ports[_text(group.attrs["name"])] = (neuron.s_out, shape)
            layers.append((neuron.s_out, neuron, synapses))
    return layers, layers[-1][1]


def main(argv):
    args = [a for a in argv if not a.startswith("--")]
    if len(args) != 3:
        sys.stderr.write("usage: lava_runner.py NET.h5 INPUT.npz OUTPUT.npz [--state=all|last]\n")
        return 2
    net_path, input_path, output_path = args
    state = next((a.split("=", 1)[1] for a in argv if a.startswith("--state=")), None)
    started = time.perf_counter()

    import h5py
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc import io
    from lava.proc.monitor.process import Monitor

    x = np.load(input_path)["x"]
    samples, steps = int(x.shape[0]), int(x.shape[1])
    with h5py.File(net_path, "r") as handle:
        graph = _text(handle.attrs.get("format", "")) == GRAPH_FORMAT
        # netx feeds a dense first layer (after its flatten) the input flattened; a graph flattens at the port
        flat_input = x.ndim == 3 or not graph and _text(handle["layer"]["1"]["type"][0]) != "conv"
    if flat_input:  # a dense first layer of a netx file, or vector input: (C, H, W) flattened in C order
        data = x.reshape(samples, steps, -1).transpose(2, 0, 1)
    else:  # Lava's (x, y, z) = (W, H, C)
        data = x.transpose(4, 3, 2, 0, 1)
    data = data.reshape(*data.shape[:-2], samples * steps).astype(np.int32)
    source = io.source.RingBuffer(data=data)
    layers, runnable = (build_graph if graph else build_netx)(net_path, source)
    total = samples * steps
    sinks, monitors = [], []
    for i, (out, neuron, _) in enumerate(layers):
        sink = io.sink.RingBuffer(shape=out.shape, buffer=total)
        out.connect(sink.a_in)
        sinks.append(sink)
        monitors.append(None)
        if state == "all" or state == "last" and i == len(layers) - 1:
            mu, mv = Monitor(), Monitor()
            mu.probe(neuron.u, total)
            mv.probe(neuron.v, total)
            monitors[i] = (mu, mv)
    built = time.perf_counter()

    config = Loihi2SimCfg(select_tag="fixed_pt")
    for sample in range(samples):
        runnable.run(condition=RunSteps(num_steps=steps), run_cfg=config)
        if sample + 1 < samples:
            for _, neuron, synapses in layers:
                neuron.u.set(np.zeros(neuron.u.shape))
                neuron.v.set(np.zeros(neuron.v.shape))
                for synapse in synapses:
                    buffer = synapse.a_buff if hasattr(synapse, "a_buff") else synapse.a_buf
                    buffer.set(np.zeros(buffer.shape))
    out = {}

    def chw(series):  # (total, *lava shape) -> (N, steps, *(C, H, W))
        series = series.reshape(samples, steps, *series.shape[1:])
        if series.ndim == 5:
            series = series.transpose(0, 1, 4, 3, 2)
        return series

    for i, sink in enumerate(sinks):
        spikes = np.moveaxis(sink.data.get(), -1, 0)
        out[f"spikes_{i}"] = chw(spikes).astype(np.uint8)
        if monitors[i] is not None:
            mu, mv = monitors[i]
            u = next(iter(mu.get_data().values()))["u"]
            v = next(iter(mv.get_data().values()))["v"]
            out[f"u_{i}"] = chw(np.asarray(u)).astype(np.int64)
            out[f"v_{i}"] = chw(np.asarray(v)).astype(np.int64)
    finished = time.perf_counter()
    runnable.stop()
    np.savez(output_path, seconds_build=built - started, seconds_run=finished - built, layers=len(sinks), **out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
