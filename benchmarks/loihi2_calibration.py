"""Loihi 2's chip file against the measured points: what its static power and per-event energies
predict for lava-dl's PilotNet on Loihi 2, and the residuals.

    python benchmarks/loihi2_calibration.py

Measured points (lava-dl's benchmark notebooks, Loihi 2 on Oheo Gulch, quoted in loihi2.toml):

- PilotNet LIF (``pilotnet_snn/benchmark.ipynb``): 0.679 W total, 0.232 W static, 408.9 steps/s,
  1.66 mJ per step: dynamic energy (0.679 - 0.232) / 408.9 = 1.093 mJ per step;
- PilotNet SDNN (``pilotnet_sdnn/benchmark.ipynb``): 0.2818 W static, 0.2757 W total, 16.87
  inferences/s: its total is below its static power (measured apart), so it is a second point for
  the static power only, not for the dynamic energy.

Static power: the least-squares constant over both points is their mean; the residuals of the
file's value and of the mean are written. Per-event energies: the notebooks give no activity
(spikes or synaptic ops per step), so one dynamic point cannot fit the six per-event constants. What
it can say: the chip model's dynamic energy per step of PilotNet (the ``chip`` model's terms, with the
Loihi 2 compiler's partition as snnpipe's fit reproduces it, `hw_targets.fit`) is linear in the
firing rate r of its spiking layers (the first layer's graded frame: every synapse every step);
solving model(r) = measured gives the rate at which the file's constants are exact, and
measured / model(1) the factor by which they would be too low if no rate in [0, 1] did.
Writes ``reports/bench/loihi2_calibration.json`` and ``.md``.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from chip_fit import pilotnet  # noqa: E402 - the PilotNet graph of the fit benchmark

from snnpipe.hw_targets.fit import fit_graph, fit_layers, get_fit_chip  # noqa: E402

OUT = Path(__file__).resolve().parents[1] / "reports" / "bench"
LIF = {"total_w": 0.679, "static_w": 0.232, "steps_per_s": 408.9, "source": "lava-dl pilotnet_snn/benchmark.ipynb"}
SDNN = {"total_w": 0.2757, "static_w": 0.2818, "steps_per_s": 16.87, "source": "lava-dl pilotnet_sdnn/benchmark.ipynb"}


def dynamic_terms(chip) -> tuple[float, float, dict[str, int]]:
    """PilotNet's dynamic energy per step on ``chip`` as a + b r (pJ): the graded first layer's synaptic
    ops every step and every neuron's idle update in a; the rest per unit firing rate in b."""
    graph = pilotnet()
    layers = fit_layers(graph)
    placement = fit_graph(graph, chip).placement
    a = b = 0.0
    previous = 0
    counts = {"neurons": 0, "synapses_graded": 0, "synapses_spiking": 0}
    hop = (chip.hop_min_pj + chip.hop_max_pj) / 2
    for i, layer in enumerate(layers):
        cores = len(placement[layer.name])
        if i == 0:
            a += layer.synapses * chip.synop_pj
            counts["synapses_graded"] += layer.synapses
        else:
            b += layer.synapses * chip.synop_pj  # every input spiking at r: r x its synapses
            b += layer.inputs * cores * max(1, math.ceil((previous + cores) / 2)) * hop  # multicast to its cores
            counts["synapses_spiking"] += layer.synapses
        a += layer.neurons * chip.neuron_inactive_pj
        b += layer.neurons * (chip.neuron_active_pj - chip.neuron_inactive_pj + chip.spike_pj)
        counts["neurons"] += layer.neurons
        previous = cores
    return a, b, counts


def main() -> None:
    chip = get_fit_chip("loihi2")
    measured_pj = (LIF["total_w"] - LIF["static_w"]) / LIF["steps_per_s"] * 1e12
    a, b, counts = dynamic_terms(chip)
    rate = (measured_pj - a) / b
    mean_static = (LIF["static_w"] + SDNN["static_w"]) / 2
    static = {name: {"value_w": value, "residuals": {point["source"]: (value - point["static_w"]) / point["static_w"]
                                                     for point in (LIF, SDNN)}}
              for name, value in (("file", chip.static_w), ("least_squares", mean_static))}
    result = {
        "measured": {"lif": LIF, "sdnn": SDNN, "lif_dynamic_mj_per_step": measured_pj * 1e-9,
                     "lif_total_mj_per_step": LIF["total_w"] / LIF["steps_per_s"] * 1e3},
        "static": static,
        "pilotnet": counts,
        "model_dynamic_mj_per_step": {"rate_0": a * 1e-9, "rate_1": (a + b) * 1e-9},
        "rate_where_model_equals_measured": rate,
        "scale_if_all_fire": measured_pj / (a + b),
        "file_total_mj_per_step_at_that_rate": (a + b * rate) * 1e-9 + chip.static_w * chip.step_s * 1e3,
    }
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "loihi2_calibration.json").write_text(json.dumps(result, indent=1) + "\n")
    lines = ["# Loihi 2's chip file against lava-dl's measured PilotNet", "",
             f"PilotNet: {counts['neurons']:,} neurons, {counts['synapses_graded']:,} synapses of the graded first layer, "
             f"{counts['synapses_spiking']:,} spike-driven synapses.", "",
             "| static power | value | residual, PilotNet LIF (0.232 W) | residual, PilotNet SDNN (0.2818 W) |",
             "| --- | ---: | ---: | ---: |"]
    for name, row in static.items():
        lif, sdnn = row["residuals"].values()
        lines.append(f"| {name} | {row['value_w']:.4g} W | {lif:+.1%} | {sdnn:+.1%} |")
    lines += ["", f"Dynamic energy per step, measured (PilotNet LIF): {measured_pj * 1e-9:.4g} mJ. The file's per-event "
              f"constants (Loihi's, Davies 2018) give {a * 1e-9:.4g} mJ at firing rate 0 and {(a + b) * 1e-9:.4g} mJ at "
              f"rate 1; they equal the measurement at rate {rate:.3g}"
              + (" (a plausible rate: no evidence against the constants)" if 0 <= rate <= 1 else
                 f" (outside [0, 1]: the constants are {measured_pj / (a + b):.3g}x too low even if every neuron fired)"
                 if rate > 1 else " (below 0: the constants are too high even with no spikes)") + ".",
              "The notebooks give no spike counts, so this point cannot separate the six per-event constants: the "
              "file keeps Loihi's and its static power of PilotNet LIF (the point whose step time it uses)."]
    (OUT / "loihi2_calibration.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
