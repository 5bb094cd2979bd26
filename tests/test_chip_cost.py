"""Energy and latency per inference on each chip (`snnpipe.pipeline.fit.chip_cost`), by hand on a
two-neuron network: the chip file's constants and published ranges, the profile's counts, and what
a chip that publishes no figure says instead of a number."""

import pytest
import torch
from torch import nn

from snnpipe.hw_targets.chip import CHIP_DIR, CHIPS, Chip, ChipError, load_chip_file
from snnpipe.models.neurons import CubaLIF, NeuronParams
from snnpipe.pipeline.fit import chip_cost, fit_rows
from snnpipe.pipeline.profile import profile


def _steps(m, x):
    return torch.stack([m(x_t).flatten(1) for x_t in x]).mean(0)


def _dense():
    # Linear(2 -> 2), weights 1, no bias, into CUBA LIF neurons (threshold 1, voltage decay 0.5)
    fc = nn.Linear(2, 2, bias=False)
    nn.init.constant_(fc.weight, 1.0)
    return nn.Sequential(fc, CubaLIF(NeuronParams(voltage_decay=0.5, threshold=1.0)))


# T = 3 steps of input spikes [1, 1], [0, 0], [1, 0]: 3 input events to both neurons (6 ACs); currents
# 2, 0, 1: both neurons spike at t1 (2 active updates, 2 spikes), none after: 6 updates
DENSE_X = torch.tensor([[[1.0, 1.0]], [[0.0, 0.0]], [[1.0, 0.0]]])
QUIET_X = torch.zeros(3, 1, 2)


def test_xylo_is_priced_for_its_measured_power_over_t_dt_by_hand():
    busy, quiet = (profile(_dense(), x, run=_steps) for x in (DENSE_X, QUIET_X))
    assert (busy.timesteps, busy.layers[0].acs, busy.layers[1].spikes) == (3, 6, 2)
    cost = chip_cost(busy, "xylo", chips=1)
    # 291 uW (Bos & Muir 2024) x 3 steps x 1 ms (Rockpool's dt) = 0.873 uJ; low end 100 uW x 3 ms = 0.3 uJ,
    # high end 291 uW x 3 x 10 ms = 8.73 uJ; latency 3 ms, 3 to 30 ms
    assert cost["energy_uj"] == pytest.approx(291e-6 * 3 * 1e-3 * 1e6)
    assert (cost["min_uj"], cost["max_uj"]) == (pytest.approx(0.3), pytest.approx(8.73))
    assert (cost["latency_s"], cost["latency_min_s"], cost["latency_max_s"]) == (
        pytest.approx(3e-3), pytest.approx(3e-3), pytest.approx(30e-3))
    # no per-event energy is published, so activity does not move it: the figure is a lower bound, named so
    assert chip_cost(quiet, "xylo", chips=1)["energy_uj"] == pytest.approx(cost["energy_uj"])
    assert cost["not_charged"] == ["synop_pj", "neuron_active_pj", "neuron_inactive_pj", "spike_pj", "hop_min_pj",
                                   "hop_max_pj"]
    assert cost["sources"]["static_w"].startswith("measured dynamic inference power of Xylo Audio 2")
    assert "arXiv:2406.15112" in cost["sources"]["static_w"] and "XyloSim" in cost["sources"]["step_s"]
    assert chip_cost(busy, "xylo", chips=2)["energy_uj"] == pytest.approx(2 * cost["energy_uj"])  # per chip
    row = fit_rows([{"chip": "xylo", "fits": True, "cores": 1, "chips": 1, "uses": [], "failure": None,
                     "summary": "xylo: fits", "cost": cost}])[0]
    assert row[5:7] == [">= 0.873 uJ (0.3 to 8.73)", "3 ms (3 to 30, 3 steps)"]


def test_a_chip_files_published_ranges_price_every_term_from_low_to_high_ends(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text('name = "mine"\nsynop_pj = 10.0\nneuron_active_pj = 50.0\nneuron_inactive_pj = 30.0\n'
                    'spike_pj = 1.0\nhop_min_pj = 2.0\nhop_max_pj = 3.0\nneurons_per_core = 4\n'
                    'memory_bytes_per_core = 1024\ncores_per_chip = 2\nstatic_w = 2e-9\nstep_s = 1e-3\n'
                    '[ranges]\nsynop_pj = [5.0, 20.0]\nstatic_w = [1e-9, 4e-9]\n')
    cost = chip_cost(profile(_dense(), DENSE_X, run=_steps), load_chip_file(path))
    # compute 6 ACs x 10 pJ (5 to 20); neurons 2 active x 50 + 4 idle x 30 + 2 spikes x 1 = 222; 3 events
    # to the layer's 1 core, 1 hop at 2.5 pJ (2 to 3); static 2 nW x 3 steps x 1 ms = 6 pJ (3 to 12)
    assert cost["energy_uj"] == pytest.approx((60 + 222 + 7.5 + 6) * 1e-6)
    assert cost["min_uj"] == pytest.approx((30 + 222 + 6 + 3) * 1e-6)
    assert cost["max_uj"] == pytest.approx((120 + 222 + 9 + 12) * 1e-6)
    assert cost["latency_s"] == cost["latency_min_s"] == cost["latency_max_s"] == pytest.approx(3e-3)
    assert cost["not_charged"] == []


@pytest.mark.parametrize("ranges, words", [
    ("synop_pj = [11.0, 20.0]", "low <= synop_pj=10.0 <= high"),
    ("step_s = [1e-3, 2e-3]", "give a range only for a field the chip gives"),
    ("neurons_per_core = [1, 8]", "give a range only for a field the chip gives"),
])
def test_a_range_that_does_not_hold_its_value_is_refused_in_one_line(tmp_path, ranges, words):
    path = tmp_path / "bad.toml"
    path.write_text('name = "bad"\nsynop_pj = 10.0\nneuron_active_pj = 50.0\nneuron_inactive_pj = 30.0\n'
                    'spike_pj = 1.0\nhop_min_pj = 2.0\nhop_max_pj = 3.0\nneurons_per_core = 4\n'
                    f'memory_bytes_per_core = 1024\ncores_per_chip = 2\n[ranges]\n{ranges}\n')
    with pytest.raises(ChipError, match="bad.toml") as err:
        load_chip_file(path)
    assert words in str(err.value) and "\n" not in str(err.value)


def test_speck_charges_each_spike_its_measured_energy_by_hand():
    p = profile(_dense(), DENSE_X, run=_steps)
    cost = chip_cost(p, "speck", chips=1)
    # 2 spikes x 4,890.4 pJ (Yao et al. 2024, Table 1, pooled), from 2 x 2,919.7 to 2 x 7,589.5 pJ; the ACs and
    # neuron updates are inside the per-spike figure; no time per step: no latency, no resting energy
    assert (cost["energy_uj"], cost["min_uj"], cost["max_uj"]) == (
        pytest.approx(2 * 4890.4e-6), pytest.approx(2 * 2919.7e-6), pytest.approx(2 * 7589.5e-6))
    assert cost["latency_s"] is None and cost["lower_bound"] and "step_s" in cost["not_charged"]
    quiet = chip_cost(profile(_dense(), QUIET_X, run=_steps), "speck", chips=1)
    assert quiet["energy_uj"] == 0.0  # no spike, no dynamic energy: Speck rests at 0.42 mW, over a time it does not set
    speck = CHIPS["speck"]
    assert (speck.static_w, speck.step_s, speck.ranges["static_w"]) == (0.00042, None, [0.0004187, 0.00042])
    assert "Nat. Commun. 15, 4464 (2024)" in speck.sources["static_w"] and "Table 1" in speck.sources["spike_pj"]
    # the pooled figure from the table's six points: (total - 0.42 mW) x 0.54 s over all their spikes
    points = [(9.5, 1.0), (16.1, 2.9), (46.8, 3.3), (3.8, 0.4), (7.3, 1.2), (12.3, 1.5)]
    per_spike = [(mw - 0.42) * 1e-3 * 0.54 / (m * 1e6) * 1e12 for mw, m in points]
    pooled = sum((mw - 0.42) * 1e-3 * 0.54 for mw, _ in points) / sum(m * 1e6 for _, m in points) * 1e12
    assert speck.bounds("spike_pj") == (pytest.approx(pooled, abs=0.05), pytest.approx(min(per_spike), abs=0.05),
                                        pytest.approx(max(per_spike), abs=0.05))
    # a chip file that gives Speck a time per step (1 ms) adds its resting power: 0.42 mW x 3 ms = 1.26 uJ
    mine = {**speck.to_dict(), "name": "speck-1ms", "step_s": 1e-3, "sources": {**speck.sources, "step_s": "mine"}}
    with_rest = chip_cost(p, Chip(**mine), chips=1)
    assert with_rest["energy_uj"] == pytest.approx(1.26 + 2 * 4890.4e-6)
    assert with_rest["min_uj"] == pytest.approx(1.2561 + 2 * 2919.7e-6) and with_rest["latency_s"] == pytest.approx(3e-3)


def test_akida_and_spinnaker2_say_why_they_are_not_priced():
    p = profile(_dense(), DENSE_X, run=_steps)
    for name in ("akida", "spinnaker2"):
        cost = chip_cost(p, name)
        assert cost == {"priced": False, "why": cost["why"]} and "no per-event energies published" in cost["why"]
        assert "Energy: not priced." in (CHIP_DIR / f"{name}.toml").read_text()  # and what was searched


def test_the_chip_energy_model_prices_xylo_with_its_baselines():
    p = profile(_dense(), DENSE_X, run=_steps, energy_model="chip", chip="xylo")
    snn = p.estimates["snn"]
    # the chip model, without a fit, counts one chip: 291 uW x 3 ms = 873,000 pJ, all of it power over the run
    assert snn.terms["static"] == pytest.approx(873_000.0) and snn.total_pj == pytest.approx(873_000.0)
    assert (snn.min_pj, snn.max_pj) == (pytest.approx(300_000.0), pytest.approx(8_730_000.0))
    with pytest.raises(ChipError, match="no per-event energies and no power over a time per step"):
        profile(_dense(), DENSE_X, run=_steps, energy_model="chip", chip="akida")
