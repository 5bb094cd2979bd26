"""Run a netx file in Lava's fixed-point CPU simulation; save every layer's spikes (and u, v).

This script runs in the Lava environment (Python 3.10, lava-dl 0.6.0, lava-nc 0.10.0), never inside
snnpipe: `lava_bridge` starts it as a subprocess with file paths and reads back an .npz::

    <lava python> lava_runner.py NET.h5 INPUT.npz OUTPUT.npz [--state=all|last]

INPUT.npz holds ``x``: (N, steps, C, H, W) binary input spikes. The network is built once with
``lava.lib.dl.netx.hdf5.Network``; a ``RingBuffer`` source feeds the N samples one after another,
``steps`` steps each, and between samples every neuron's u and v and every synapse's buffered
output (``a_buff`` of ``Dense``, ``a_buf`` of ``Conv``) are set back to 0, so each sample starts from
rest as in a fresh network. It runs under ``Loihi2SimCfg(select_tag="fixed_pt")``.

OUTPUT.npz holds, per layer i (netx's blocks, in order), ``spikes_i``: (N, steps, *shape) uint8 with
shape in (C, H, W) order, and with ``--state=all`` (every layer) or ``--state=last`` (the last layer)
``u_i`` and ``v_i`` (int64) after every step, recorded with ``Monitor`` probes; plus
``seconds_build`` (network and probes) and ``seconds_run`` (compile and run, all samples).
"""

import sys
import time

import numpy as np


def main(argv):
    args = [a for a in argv if not a.startswith("--")]
    if len(args) != 3:
        sys.stderr.write("usage: lava_runner.py NET.h5 INPUT.npz OUTPUT.npz [--state=all|last]\n")
        return 2
    net_path, input_path, output_path = args
    state = next((a.split("=", 1)[1] for a in argv if a.startswith("--state=")), None)
    started = time.perf_counter()

    from lava.lib.dl import netx
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc import io
    from lava.proc.monitor.process import Monitor

    x = np.load(input_path)["x"]
    samples, steps = int(x.shape[0]), int(x.shape[1])
    net = netx.hdf5.Network(net_config=net_path)
    flat_input = len(net.inp.shape) == 1
    if flat_input:  # the first layer is dense: netx feeds it (C, H, W) flattened in C order
        data = x.reshape(samples, steps, -1).transpose(2, 0, 1)
    else:  # netx's (x, y, z) = (W, H, C)
        data = x.transpose(4, 3, 2, 0, 1)
    data = data.reshape(*data.shape[:-2], samples * steps).astype(np.int32)
    source = io.source.RingBuffer(data=data)
    source.s_out.connect(net.inp)
    total = samples * steps
    sinks, monitors = [], []
    for i, layer in enumerate(net.layers):
        sink = io.sink.RingBuffer(shape=layer.out.shape, buffer=total)
        layer.out.connect(sink.a_in)
        sinks.append(sink)
        monitors.append(None)
        if state == "all" or state == "last" and i == len(net.layers) - 1:
            mu, mv = Monitor(), Monitor()
            mu.probe(layer.neuron.u, total)
            mv.probe(layer.neuron.v, total)
            monitors[i] = (mu, mv)
    built = time.perf_counter()

    config = Loihi2SimCfg(select_tag="fixed_pt")
    for sample in range(samples):
        net.run(condition=RunSteps(num_steps=steps), run_cfg=config)
        if sample + 1 < samples:
            for layer in net.layers:
                layer.neuron.u.set(np.zeros(layer.neuron.u.shape))
                layer.neuron.v.set(np.zeros(layer.neuron.v.shape))
                buffer = layer.synapse.a_buff if hasattr(layer.synapse, "a_buff") else layer.synapse.a_buf
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
    net.stop()
    np.savez(output_path, seconds_build=built - started, seconds_run=finished - built, layers=len(sinks), **out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
