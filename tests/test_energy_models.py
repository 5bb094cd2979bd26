"""The energy models by hand: every term of ``ops``, ``memory`` and ``chip`` on a tiny dense and a
tiny conv network, every constant traced to its table; baselines, break-even, standard errors, the
energy gate, chip files and the schema-1 reader."""

import json
import math

import pytest
import torch
from torch import nn

from snnpipe.hw_targets.energy import TARGETS
from snnpipe.hw_targets.chip import ChipError, get_chip, load_chip_file
from snnpipe.hw_targets.memory import HOROWITZ_45NM
from snnpipe.hw_targets.precision import qann, qann_bits
from snnpipe.models.neurons import CubaLIF, NeuronParams
from snnpipe.pipeline.profile import Profile, ProfileError, energy_gate, firing_rate_gate, profile
from snnpipe.pipeline.profile.estimators import ENERGY_MODELS
from snnpipe.pipeline.profile.estimators.base import network_view
from snnpipe.pipeline.profile.schema import SynapseProfile


def _steps(m, x):
    return torch.stack([m(x_t).flatten(1) for x_t in x]).mean(0)


def _dense():
    # Linear(2 -> 2), weights 1, no bias, into CUBA LIF neurons (threshold 1, voltage decay 0.5)
    fc = nn.Linear(2, 2, bias=False)
    nn.init.constant_(fc.weight, 1.0)
    return nn.Sequential(fc, CubaLIF(NeuronParams(voltage_decay=0.5, threshold=1.0)))


# input spikes t1 [1, 1], t2 [0, 0], t3 [1, 0]: 3 input events, each reaching both neurons: ACs 6;
# currents t1 2 (both spike), t2 0, t3 1 (v = 1, not > 1): 2 spikes in 6 updates
DENSE_X = torch.tensor([[[1.0, 1.0]], [[0.0, 0.0]], [[1.0, 0.0]]])


def test_memory_model_of_a_tiny_dense_network_by_hand():
    p = profile(_dense(), DENSE_X, run=_steps, energy_model="memory", precision="int8")
    fc, lif = p.layers
    assert (fc.acs, fc.input_events, fc.kernel_fanout, fc.weights, fc.biases, fc.kernel) == (6, 3, 2, 4, 0, 0)
    assert (lif.neurons, lif.state_size, lif.spikes, lif.neuron_updates) == (2, 4, 2, 6)  # u and v per neuron
    snn = p.estimates["snn"]
    # INT8 (Horowitz): add 0.03, mult 0.2; weights 8 bit, state 24 bit (Loihi's u, v); address
    # arithmetic INT32 add 0.1 pJ; every memory here is <= 8 KB: 10 pJ per 64-bit access
    layer = snn.layers["0"]
    assert layer["compute"] == pytest.approx(6 * 0.03)                       # ACs x INT8 add
    assert layer["addressing"] == pytest.approx(3 * 2 * 0.1)                 # events x fan-out x INT32 add
    assert layer["memory"] == pytest.approx(6 * 8 / 64 * 10 + 3 * 32 / 64 * 10)  # 6 weights fetched; 3 events of 32 bit
    assert layer["neuron_state"] == pytest.approx(2 * 6 * 24 / 64 * 10)      # read + write a potential per op
    neuron = snn.layers["1"]
    assert neuron["compute"] == pytest.approx(6 * 2 * 0.23 + 2 * 0.03)       # 2 decays (MAC) per update; a reset per spike
    assert neuron["neuron_state"] == pytest.approx(2 * 4 * 3 * 24 / 64 * 10)  # 4 state variables, 3 steps, read + write
    assert neuron["memory"] == pytest.approx(2 * 32 / 64 * 10)               # 2 spikes out as 32-bit events
    assert snn.total_pj == pytest.approx(0.18 + 0.6 + 22.5 + 45 + 2.82 + 90 + 10)  # 171.1 pJ
    assert snn.min_pj == snn.max_pj == pytest.approx(snn.total_pj)  # every memory is the 8 KB one: no range

    # the ANN twin: 4 dense MACs, 2 inputs read, 2 outputs written, once (T = 1)
    fp32, int8, q = p.estimates["ann-fp32"], p.estimates["ann-int8"], p.estimates["qann-2bit"]
    assert fp32.total_pj == pytest.approx(4 * 4.6 + (2 + 2) * 0.1 + 4 * 32 / 64 * 10 + 2 * 32 / 64 * 10 + 2 * 32 / 64 * 10)
    assert int8.total_pj == pytest.approx(4 * 0.23 + 0.4 + 4 * 8 / 64 * 10 + 2 * 8 / 64 * 10 + 2 * 8 / 64 * 10)
    # Yan et al.: T = 3 -> ceil(log2 4) = 2-bit activations; mult 0.2 x 2/8 = 0.05, add 0.03
    assert q.total_pj == pytest.approx(4 * 0.08 + 0.4 + 4 * 8 / 64 * 10 + 2 * 2 / 64 * 10 + 2 * 2 / 64 * 10)

    # break-even of the layer: all its energy follows activity (E0 = 0), so k* = E_ann / E_snn
    row = p.break_even[0]
    assert (row.layer, row.spikes_per_synapse, row.firing_rate) == ("0", 6 / 4, 3 / (2 * 3))
    e_layer = 0.18 + 0.6 + 22.5 + 45
    assert row.baselines["ann-fp32"]["scale"] == pytest.approx(58.8 / e_layer)
    assert row.baselines["ann-int8"]["spikes_per_synapse"] == pytest.approx(11.32 / e_layer * 1.5)
    # in total the neurons' idle cost (every update decays, every state is read and written: 92.76 pJ)
    # already exceeds every baseline: no activity breaks even
    total = p.break_even[-1]
    assert total.layer == "total" and all(v is None for v in total.baselines.values())


def test_ops_model_is_todays_model():
    p = profile(_dense(), DENSE_X, run=_steps, energy_model="ops")
    snn = p.estimates["snn"]
    assert snn.terms["compute"] == pytest.approx(6 * 0.9) == pytest.approx(p.totals.compute_energy_uj * 1e6)
    bits = 3 * 2 * 2 * 32 + 2  # T x 2 x neurons x 32 bit + 1 bit per spike (Joint A-SNN §5.4)
    assert (snn.min_pj, snn.max_pj) == (pytest.approx(5.4 + bits / 64 * 10), pytest.approx(5.4 + bits / 64 * 100))
    assert snn.total_pj == pytest.approx(5.4 + bits / 64 * 55)  # nominal: the middle of 10 to 100 pJ
    assert p.estimates["ann-fp32"].terms["compute"] == pytest.approx(4 * 4.6)


def test_joint_a_snn_check_under_ops():
    # Joint A-SNN Table 5: 73.4M ACs + 3.52M MACs = 82.2 uJ at 45 nm (the paper's mJ is uJ)
    layer = SynapseProfile("conv", "Conv2d", acs=73.4e6, macs=3.52e6)
    priced = ENERGY_MODELS["ops"].price(network_view([layer], 2, True), target=TARGETS["cmos45nm"], precision=None)
    assert priced.layers["conv"]["compute"].nom * 1e-6 == pytest.approx(82.2, abs=0.1)


def test_chip_model_of_a_tiny_dense_network_by_hand():
    p = profile(_dense(), DENSE_X, run=_steps, energy_model="chip", chip="loihi2")
    snn = p.estimates["snn"]
    # Davies et al. 2018, Table 2: synop 23.6 pJ; neuron update 81 active / 52 inactive; spike 1.7 pJ;
    # tile hop 3.0-4.0 pJ. One core (2 neurons, 4 synapses): each input event is one message, 1 hop.
    assert snn.layers["0"]["compute"] == pytest.approx(6 * 23.6)
    assert snn.layers["0"]["addressing"] == pytest.approx(3 * 3.5)
    assert snn.layers["1"]["neuron_state"] == pytest.approx(2 * 81 + 4 * 52)
    assert snn.layers["1"]["addressing"] == pytest.approx(2 * 1.7)
    # lava-dl's PilotNet benchmark on Loihi 2: 0.232 W static, 408.9 steps/s; 3 steps on one chip
    assert snn.terms["static"] == pytest.approx(0.232 * 3 / 408.9 * 1e12)
    dynamic = 6 * 23.6 + 2 * 81 + 4 * 52 + 2 * 1.7
    assert snn.min_pj == pytest.approx(dynamic + 3 * 3.0 + snn.terms["static"])
    assert snn.max_pj == pytest.approx(dynamic + 3 * 4.0 + snn.terms["static"])
    assert p.estimates["ann-int8"].model == "memory"  # a chip's baselines run on a conventional accelerator
    # Loihi (2018) publishes no static power: none is charged
    assert profile(_dense(), DENSE_X, run=_steps, energy_model="chip", chip="loihi").estimates["snn"].terms["static"] == 0


def test_memory_model_of_a_tiny_conv_network_by_hand():
    # Conv2d(1 -> 2, 3x3, padding 1, bias 0) of weights 0.5 on a 3x3 image; one spike in the corner
    conv = nn.Conv2d(1, 2, 3, padding=1)
    nn.init.constant_(conv.weight, 0.5)
    nn.init.zeros_(conv.bias)
    model = nn.Sequential(conv, CubaLIF(NeuronParams(voltage_decay=0.5, threshold=1.0)))
    x = torch.zeros(1, 1, 1, 3, 3)
    x[0, 0, 0, 0, 0] = 1.0
    p = profile(model, x, run=_steps, energy_model="memory", precision="int8")
    layer = p.layers[0]
    # the corner reaches 2 x 2 outputs per channel: 8 ACs (exact at the border); Lemaire's per-spike
    # fan-out is C_out / groups x k x k = 18 weights, fetched and addressed whatever the border
    assert (layer.acs, layer.input_events, layer.kernel_fanout, layer.kernel, layer.outputs) == (8, 1, 18, 9, 18)
    assert (layer.weights, layer.biases) == (18, 2)
    terms = p.estimates["snn"].layers["0"]
    assert terms["compute"] == pytest.approx(8 * 0.03 + 18 * 0.03)         # ACs + a bias add per output
    assert terms["addressing"] == pytest.approx(18 * 0.1 + 2 * 1 * 3.2)     # 18 addresses + 2 INT32 MACs per spike
    assert terms["memory"] == pytest.approx((18 + 18) * 8 / 64 * 10 + 32 / 64 * 10)  # kernel + biases; one event
    assert terms["neuron_state"] == pytest.approx(2 * 18 * 24 / 64 * 10)
    neuron = p.estimates["snn"].layers["1"]
    assert p.layers[1].spikes == 0  # 0.5 < threshold: no output spike
    assert neuron["compute"] == pytest.approx(18 * 2 * 0.23)
    assert neuron["neuron_state"] == pytest.approx(2 * 36 * 24 / 64 * 10)
    # the ANN twin's conv: 18 outputs x 9 MACs = 162; inputs read per MAC (no reuse: Lemaire)
    ann = p.estimates["ann-fp32"].layers["0"]
    assert ann["compute"] == pytest.approx(162 * 4.6 + 18 * 0.9)
    assert ann["addressing"] == pytest.approx((9 + 18 + 2 * 9) * 0.1)
    assert ann["memory"] == pytest.approx((162 + 18) * 32 / 64 * 10 + 162 * 32 / 64 * 10 + 18 * 32 / 64 * 10)


def test_sram_cost_by_size_and_dram_beyond_it():
    # Horowitz 2014: 8 KB 10 pJ, 32 KB 20 pJ, 1 MB 100 pJ per 64-bit access; DRAM 1.3-2.6 nJ
    assert HOROWITZ_45NM.access_range_pj(1000) == (10.0, 10.0, 10.0)
    assert HOROWITZ_45NM.access_range_pj(20 * 1024) == (15.0, 10.0, 20.0)  # halfway from 8 to 32 KB
    assert HOROWITZ_45NM.access_range_pj(1024 * 1024) == (100.0, 100.0, 100.0)
    assert HOROWITZ_45NM.access_range_pj(2 * 1024 * 1024) == (1950.0, 1300.0, 2600.0)
    assert [qann_bits(t) for t in (1, 2, 3, 4, 5, 7, 8)] == [1, 2, 2, 3, 3, 3, 4]  # ceil(log2(T + 1))
    assert qann(5).mac_pj == pytest.approx(0.2 * 3 / 8 + 0.03)


def test_standard_errors_over_samples_by_hand():
    # two samples, one step: A = [1, 1] (4 ACs, both neurons spike), B = [0, 0] (nothing)
    x = torch.tensor([[[1.0, 1.0], [0.0, 0.0]]])
    p = profile(_dense(), x, run=_steps, energy_model="ops")
    # firing rate per sample 1 and 0: std 0.7071, stderr = 0.7071 / sqrt(2) = 0.5
    assert p.totals.firing_rate_stderr == pytest.approx(0.5)
    assert p.layers[1].firing_rate_stderr == pytest.approx(0.5)
    # energy per sample: A - B = 4 x 0.9 pJ + 2 spike bits / 64 x 55 pJ; stderr of two = |A - B| / 2
    assert p.estimates["snn"].stderr_pj == pytest.approx((3.6 + 2 / 64 * 55) / 2)


def test_energy_gate_fails_on_more_energy_and_refuses_another_model():
    before = profile(_dense(), torch.tensor([[[1.0, 0.0]]]), run=_steps, energy_model="memory")
    after = profile(_dense(), torch.tensor([[[1.0, 1.0]]]), run=_steps, energy_model="memory")
    assert energy_gate(before, before, 0.05).passed
    gate = energy_gate(after, before, 0.05)
    assert not gate.passed and gate.rows[0][0] == "total" and gate.rows[0][3] > 0.05
    assert "energy" in gate.table() and "FAIL" in gate.table()
    other = profile(_dense(), torch.tensor([[[1.0, 0.0]]]), run=_steps, energy_model="ops")
    with pytest.raises(ProfileError, match="energy estimate has model"):
        energy_gate(other, before, 0.05)


def test_schema_1_profiles_still_read_and_gate_rates_but_not_energy(tmp_path):
    p = profile(_dense(), DENSE_X, run=_steps)
    old = p.to_dict()
    old["schema"] = "snnpipe.profile/1"
    for key in ("energy_model", "estimates", "break_even"):
        del old[key]
    new_fields = ("input_events", "weights", "biases", "fan_in", "kernel", "kernel_fanout", "inputs", "outputs",
                  "dense_macs", "firing_rate_stderr")
    old["layers"] = [{k: v for k, v in layer.items() if k not in new_fields} for layer in old["layers"]]
    del old["totals"]["firing_rate_stderr"]
    path = tmp_path / "old.json"
    path.write_text(json.dumps(old))
    assert firing_rate_gate(p, path, 0.05).passed
    with pytest.raises(ProfileError, match="no SNN energy estimate"):
        energy_gate(p, path, 0.05)
    assert Profile.from_dict(p.to_dict()).estimates["snn"].total_pj == p.estimates["snn"].total_pj


def test_chip_files(tmp_path):
    good = tmp_path / "chip.toml"
    good.write_text('name = "mine"\nsynop_pj = 10.0\nneuron_active_pj = 50.0\nneuron_inactive_pj = 30.0\n'
                    'spike_pj = 1.0\nhop_min_pj = 2.0\nhop_max_pj = 3.0\nneurons_per_core = 4\n'
                    'memory_bytes_per_core = 1024\ncores_per_chip = 2\n[sources]\nsynop_pj = "datasheet p. 7"\n')
    chip = load_chip_file(good)
    assert chip.sources["synop_pj"] == "datasheet p. 7" and "chip.toml" in chip.sources["spike_pj"]
    p = profile(_dense(), DENSE_X, run=_steps, energy_model="chip", chip_file=good)
    assert p.estimates["snn"].layers["0"]["compute"] == pytest.approx(6 * 10.0)
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nsynop_pj: 1.0\nhop_min_pj: 1.0\nhop_max_pj: 2.0\n")  # hops need the cores
    with pytest.raises(ChipError, match="missing field") as err:
        load_chip_file(bad)
    assert "\n" not in str(err.value)
    with pytest.raises(ChipError, match="unknown chip"):
        get_chip("truenorth")
    for name in ("loihi", "loihi2"):  # every built-in number carries its source
        assert all(get_chip(name).sources.get(f) for f in ("synop_pj", "neuron_active_pj", "hop_min_pj"))


@pytest.mark.parametrize("model", sorted(ENERGY_MODELS))
def test_every_energy_model_prices_a_model_with_its_baselines(model):
    p = profile(_dense(), DENSE_X, run=_steps, energy_model=model)
    assert set(p.estimates) == {"snn", "ann-fp32", "ann-int8", "qann-2bit"}
    for e in p.estimates.values():
        assert e.min_pj <= e.total_pj <= e.max_pj and math.isfinite(e.total_pj) and e.total_pj > 0


def test_memory_model_prices_both_parts_of_a_layer_with_acs_and_macs():
    # Linear(2 -> 3), weights 1, bias 0, into CUBA LIF; one sample, T = 2: step 1 graded [0.5, 1.0]
    # (3 outputs x fan-in 2 = 6 MACs), step 2 spikes [1, 0] (1 event, fan-out 3: 3 ACs)
    fc = nn.Linear(2, 3)
    nn.init.constant_(fc.weight, 1.0)
    nn.init.zeros_(fc.bias)
    model = nn.Sequential(fc, CubaLIF(NeuronParams(voltage_decay=0.5, threshold=1.0)))
    x = torch.tensor([[[0.5, 1.0]], [[1.0, 0.0]]])
    p = profile(model, x, run=_steps, energy_model="memory", precision="int8")
    layer = p.layers[0]
    assert (layer.acs, layer.macs, layer.input_events, layer.kernel_fanout, layer.dense_macs) == (3, 6, 1, 3, 6)
    # INT8: add 0.03, MAC 0.23; 8-bit weights and activations, 24-bit potentials; INT32 add 0.1 for
    # addresses; every memory here <= 8 KB: 10 pJ per 64-bit access. Bias adds: 3 outputs x 2 steps = 6.
    # The spike step: 3 ACs, its event's 3 weights fetched and addressed, one 32-bit event through the
    # FIFO, 3 potentials read and written. The graded step: S = 6 MACs / 6 per dense pass = 1 pass,
    # 6 weights and 2 inputs read, 2 + 3 addresses.
    terms = p.estimates["snn"].layers["0"]
    assert terms["compute"] == pytest.approx(3 * 0.03 + 6 * 0.23 + 6 * 0.03)            # 1.65 (the ACs' 0.09 were dropped)
    assert terms["addressing"] == pytest.approx(3 * 0.1 + 1 * (2 + 3) * 0.1)           # 0.8
    assert terms["memory"] == pytest.approx(6 * 8 / 64 * 10                              # biases 7.5
                                            + 3 * 8 / 64 * 10 + 1 * 32 / 64 * 10         # spike's weights, event 8.75
                                            + 6 * 8 / 64 * 10 + 1 * 2 * 8 / 64 * 10)     # MACs' weights, inputs 10
    assert terms["neuron_state"] == pytest.approx(2 * 3 * 24 / 64 * 10)                 # 22.5
