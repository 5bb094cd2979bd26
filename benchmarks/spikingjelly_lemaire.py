"""snnpipe's ``memory`` energy model beside SpikingJelly 2's Lemaire estimator, on the same network and inputs.

    PYTHONPATH=/path/to/spikingjelly2 python benchmarks/spikingjelly_lemaire.py [--steps 4] [--batch 8]

SpikingJelly >= 2 (``spikingjelly.activation_based.op_counter.LemaireEnergyProfiler``) must import:
it needs ``loguru`` beside it, and it replaces 0.0.0.0.14, which the test suite profiles, so install it
into a folder of its own (``pip install --no-deps --target DIR spikingjelly==2.0.0 loguru``) and put that
folder on PYTHONPATH for this script alone.

The network: a seeded spiking conv net (Conv2d 1 -> 4, 3x3, padding 1, LIF, Linear 144 -> 10 with a
bias, LIF), rate-coded 6x6 input, run step by step. Both count the same run: SpikingJelly through its
module hooks, snnpipe through ``profile_module(..., energy_model="memory", precision="int32")`` (int32:
SpikingJelly's 32-bit integer arithmetic and 32-bit words). The table gives every count of
SpikingJelly's report beside snnpipe's count under the same definition (per batch: snnpipe's counts
per inference times B), and says where they differ and why. Then SpikingJelly's total energy is
recomputed from snnpipe's counts with SpikingJelly's pricing (`lemaire_energy_pj`): equal to its own
total, so the named differences are all there is. Prints a table and writes
``reports/bench/spikingjelly_lemaire.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import torch
from torch import nn

OUT = Path(__file__).resolve().parent.parent / "reports" / "bench" / "spikingjelly_lemaire"

#: Why a count differs, where it does (docs/energy-models.md lists the same).
CAUSES = {
    "ac": "snnpipe's ACs are exact at the borders (a corner spike of a padded 3x3 conv reaches 4 outputs per "
          "channel); SpikingJelly charges every spike C_out/groups x k x k ACs (x prod(ceil(k/stride))), and adds "
          "bias adds and one AC per output spike into the same count (snnpipe prices those in `compute` too, "
          "counted apart)",
}


def spikingjelly_version() -> tuple[int, ...] | None:
    try:
        import spikingjelly
        from importlib.metadata import version

        from spikingjelly.activation_based.op_counter import LemaireEnergyProfiler
    except ImportError:
        return None
    del spikingjelly, LemaireEnergyProfiler
    return tuple(int(p) for p in version("spikingjelly").split(".")[:3] if p.isdigit())


def build(steps: int, batch: int, seed: int = 0) -> tuple[nn.Module, torch.Tensor]:
    """The seeded network and its rate-coded input (T, B, 1, 6, 6)."""
    from spikingjelly.activation_based import neuron

    torch.manual_seed(seed)
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1, bias=False), neuron.LIFNode(), nn.Flatten(),
                        nn.Linear(4 * 6 * 6, 10), neuron.LIFNode())
    with torch.no_grad():
        net[0].weight.mul_(6.0)  # enough current that the first LIF layer fires
        net[3].weight.mul_(4.0)
    x = (torch.rand(steps, batch, 1, 6, 6, generator=torch.Generator().manual_seed(seed)) < 0.3).float()
    return net, x


def spikingjelly_report(net: nn.Module, x: torch.Tensor):
    from spikingjelly.activation_based import functional
    from spikingjelly.activation_based.op_counter import LemaireEnergyConfig, LemaireEnergyProfiler

    profiler = LemaireEnergyProfiler(config=LemaireEnergyConfig(strict=False))  # Flatten is outside its scope
    profiler.bind_model(net)
    functional.reset_net(net)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with profiler, torch.no_grad():
            for x_t in x:
                net(x_t)
    return profiler.get_report()


def snnpipe_profile(net: nn.Module, x: torch.Tensor):
    from spikingjelly.activation_based import functional

    from snnpipe.pipeline.profile import profile_module

    def run(model, data):
        functional.reset_net(model)
        return torch.stack([model(x_t) for x_t in data]).mean(0)

    return profile_module(net, x, run=run, energy_model="memory", precision="int32")


def lemaire_counts(p, batch: int) -> dict[str, float]:
    """SpikingJelly's Lemaire counts (its ``counts`` keys, bytes of 32-bit words), from snnpipe's
    profile under the same definitions, per batch; ``ac`` under snnpipe's definition (exact ACs)."""
    T, word = p.timesteps, 4
    syn, neu = p.synapses, p.neuron_layers
    spiking = [s for s in syn if s.macs == 0]
    dense = [s for s in syn if s.macs > 0]
    fetched = sum(s.input_events * s.kernel_fanout for s in spiking)
    bias = sum(s.outputs * T for s in syn if s.biases)
    counts = {
        "synop": fetched,
        "mac": sum(s.macs for s in dense) + sum(n.neuron_updates for n in neu),
        "ac": sum(s.acs for s in spiking) + bias + sum(n.spikes for n in neu),
        "read_in_bytes": word * (sum(s.input_events for s in spiking)
                                 + sum(s.macs if s.kernel else T * s.inputs for s in dense)),
        "write_out_bytes": word * sum(n.spikes for n in neu),
        "read_params_bytes": word * (fetched + sum(s.macs for s in dense) + bias),
        "read_potential_bytes": word * (fetched + sum(n.neurons * T for n in neu)),
        "acc_addr": fetched + sum(T * (s.inputs + s.outputs + (s.weights // s.fan_in * s.kernel if s.kernel else 0))
                                  for s in dense),
        "mac_addr": 2 * sum(s.input_events for s in spiking if s.kernel),
    }
    counts["write_potential_bytes"] = counts["read_potential_bytes"]
    return {k: v * batch for k, v in counts.items()}


def lemaire_energy_pj(p, batch: int, cost) -> float:
    """SpikingJelly's total from snnpipe's counts and SpikingJelly's pricing (``cost``: its
    ``LemaireEnergyCostConfig``): every access in 32-bit words at ``memory_cost_pj(capacity)`` per byte,
    the capacity of each access's own buffer, which for inputs, outputs and potentials is the whole
    batch's tensor (its hooks see the batch); its AC definition (spikes x C_out/groups x k x k)."""
    T, word, fifo = p.timesteps, 4, 1000 * 4
    c = lemaire_counts(p, 1)
    ac = c["synop"] + sum(s.outputs * T for s in p.synapses if s.biases) + sum(n.spikes for n in p.neuron_layers)
    energy = ac * cost.e_add_pj + c["mac"] * (cost.e_mul_pj + cost.e_add_pj)
    energy += c["acc_addr"] * cost.e_add_pj + c["mac_addr"] * (cost.e_mul_pj + cost.e_add_pj)
    price = cost.memory_cost_pj
    for s in p.synapses:
        params = price((s.weights + s.biases) * word)
        bias = s.outputs * T if s.biases else 0
        if s.macs == 0:
            fetched = s.input_events * s.kernel_fanout
            energy += s.input_events * word * price(fifo) + (fetched + bias) * word * params
            energy += 2 * fetched * word * price(batch * s.outputs * word)
        else:
            reads = s.macs if s.kernel else T * s.inputs
            energy += reads * word * price(batch * s.inputs * word) + (s.macs + bias) * word * params
    for n in p.neuron_layers:
        energy += 2 * n.neurons * T * word * price(batch * n.neurons * word) + n.spikes * word * price(fifo)
    return energy * batch


def compare(steps: int = 4, batch: int = 8) -> dict:
    net, x = build(steps, batch)
    report = spikingjelly_report(net, x)
    p = snnpipe_profile(net, x)
    ours = lemaire_counts(p, batch)
    rows = []
    for key, theirs in report.counts.items():
        mine = ours[key]
        rows.append({"count": key, "spikingjelly": theirs, "snnpipe": mine, "equal": math.isclose(theirs, mine),
                     "cause": "" if math.isclose(theirs, mine) else CAUSES.get(key, "UNNAMED")})
    recomputed = lemaire_energy_pj(p, batch, report.config.cost_config)
    return {
        "network": "Conv2d(1,4,3x3,pad 1) LIF Linear(144,10,bias) LIF", "timesteps": steps, "batch": batch,
        "spikingjelly": report.counts, "rows": rows,
        "spikingjelly_total_pj": report.total_pj, "recomputed_from_snnpipe_counts_pj": recomputed,
        "snnpipe_memory_int32_total_pj": p.estimates["snn"].total_pj * batch,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    version = spikingjelly_version()
    if version is None or version < (2,):
        raise SystemExit("needs SpikingJelly >= 2 with its op_counter on PYTHONPATH (see the docstring)")
    result = compare(args.steps, args.batch)
    result["spikingjelly_version"] = ".".join(map(str, version))
    lines = [f"SpikingJelly {result['spikingjelly_version']} LemaireEnergyProfiler vs snnpipe --energy-model memory "
             f"--precision int32; {result['network']}, T={args.steps}, B={args.batch}", "",
             "| count | SpikingJelly | snnpipe | equal | cause |", "| --- | ---: | ---: | --- | --- |"]
    lines += [f"| {r['count']} | {r['spikingjelly']:.6g} | {r['snnpipe']:.6g} | {'yes' if r['equal'] else 'no'} | {r['cause']} |"
              for r in result["rows"]]
    lines += ["", f"SpikingJelly's total: {result['spikingjelly_total_pj']:.6g} pJ; recomputed from snnpipe's counts with "
                  f"SpikingJelly's pricing: {result['recomputed_from_snnpipe_counts_pj']:.6g} pJ; snnpipe's own memory "
                  f"model (int32): {result['snnpipe_memory_int32_total_pj']:.6g} pJ (docs/energy-models.md: why they differ)."]
    text = "\n".join(lines) + "\n"
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=2, default=float) + "\n")
    args.out.with_suffix(".md").write_text(text)


if __name__ == "__main__":
    main()
