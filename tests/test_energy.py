"""Energy targets: the equations by hand, golden numbers, the registry and user target files."""

import pytest
import torch
from torch import nn

from snnpipe.hw_targets.energy import TARGETS, EnergyTarget, TargetError, get_target, load_target_file, register_target
from snnpipe.models.neurons import CubaLIF, NeuronParams
from snnpipe.pipeline.profile import profile


def test_golden_joint_a_snn_resnet18_energy():
    # Joint A-SNN Table 5, spiking ResNet-18 at T=2: 73.4M ACs and 3.52M MACs at 45 nm
    # 73.4e6 * 0.9 pJ + 3.52e6 * 4.6 pJ = 66.06e6 + 16.192e6 = 82.252e6 pJ = 82.252 uJ
    energy_uj = TARGETS["cmos45nm"].synaptic_pj(73.4e6, 3.52e6) * 1e-6
    assert energy_uj == pytest.approx(82.2, abs=0.1)


def _two_neurons():
    # Linear(2 -> 2) with weights 1 into plain LIF neurons (threshold 1, voltage decay 0.5)
    fc = nn.Linear(2, 2, bias=False)
    nn.init.constant_(fc.weight, 1.0)
    return nn.Sequential(fc, CubaLIF(NeuronParams(voltage_decay=0.5, threshold=1.0)))


def test_loihi_energy_of_a_two_neuron_layer_by_hand():
    # input spikes t1 [1, 1], t2 [0, 0], t3 [1, 0]; each input reaches both neurons (fan-out 2)
    # ACs = 2*2 + 0 + 1*2 = 6; currents: t1 2 (spike, v->0), t2 0, t3 1 (v = 1, not > 1): 2 spikes
    # updates = 2 neurons x 3 steps = 6, active 2, inactive 4
    # E = 6*23.6 + 2*81 + 4*52 + 2*1.7 = 141.6 + 162 + 208 + 3.4 = 515.0 pJ
    x = torch.tensor([[[1.0, 1.0]], [[0.0, 0.0]], [[1.0, 0.0]]])
    model = _two_neurons()
    p = profile(model, x, run=lambda m, x: torch.stack([m(x_t) for x_t in x]).mean(0), target="loihi")
    assert (p.totals.acs, p.totals.spikes, p.totals.neuron_updates) == (6, 2, 6)
    assert p.totals.compute_energy_uj == pytest.approx(515.0e-6)
    # data movement: T x 2 x 2 neurons x 32 bit + 2 spikes x 1 bit = 386 bits = 6.03 words of 64 bit
    assert p.totals.movement_bits == 386
    assert p.totals.movement_min_uj == pytest.approx(386 / 64 * 10 * 1e-6)
    assert p.totals.movement_max_uj == pytest.approx(386 / 64 * 100 * 1e-6)
    # 45 nm charges the synaptic ops alone: 6 * 0.9 pJ
    assert profile(model, x, run=lambda m, x: torch.stack([m(x_t) for x_t in x]).mean(0)
                   ).totals.compute_energy_uj == pytest.approx(5.4e-6)


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_every_registered_target_profiles_a_model_and_sources_every_constant(name):
    target = get_target(name)
    for constant in ("ac_pj", "mac_pj", "neuron_pj", "neuron_inactive_pj", "spike_pj", "move64_min_pj",
                     "move64_max_pj", "hop_min_pj", "hop_max_pj"):
        if getattr(target, constant):
            assert target.sources[constant], constant
    p = profile(_two_neurons(), torch.ones(2, 1, 2), run=lambda m, x: torch.stack([m(x_t) for x_t in x]).mean(0),
                target=name)
    assert p.target["name"] == name and p.totals.compute_energy_uj > 0


def test_registry_refuses_a_duplicate_name():
    with pytest.raises(ValueError, match="already registered"):
        register_target(lambda: EnergyTarget("loihi", ac_pj=1.0, mac_pj=1.0, sources={"ac_pj": "a", "mac_pj": "b"}))


@pytest.mark.parametrize("kwargs,field", [
    ({"ac_pj": -1.0}, "ac_pj"),
    ({"mac_pj": float("nan")}, "mac_pj"),
    ({"neuron_pj": 2.0}, "neuron_pj"),  # no source given for it
    ({"move64_min_pj": 50.0, "move64_max_pj": 20.0, "sources": {"ac_pj": "a", "mac_pj": "b", "move64_min_pj": "c",
                                                                 "move64_max_pj": "d"}}, "move64_max_pj"),
    ({"hop_min_pj": 3.0, "sources": {"ac_pj": "a", "mac_pj": "b", "hop_min_pj": "c"}}, "hop_max_pj"),
])
def test_target_values_are_checked_and_the_error_names_the_field(kwargs, field):
    args = {"name": "x", "ac_pj": 1.0, "mac_pj": 1.0, "sources": {"ac_pj": "a", "mac_pj": "b"}, **kwargs}
    with pytest.raises(ValueError, match=field):
        EnergyTarget(**args)


def test_user_target_files_toml_and_yaml(tmp_path):
    toml = tmp_path / "chip.toml"
    toml.write_text('name = "chip"\nac_pj = 0.5\nmac_pj = 2.0\nneuron_pj = 1.5\n[sources]\nac_pj = "datasheet p. 3"\n')
    target = load_target_file(toml)
    assert (target.name, target.ac_pj, target.neuron_pj) == ("chip", 0.5, 1.5)
    assert target.sources["ac_pj"] == "datasheet p. 3"
    assert "chip.toml" in target.sources["mac_pj"]  # no citation given: the file is the source
    assert "Joint A-SNN" in target.sources["move64_min_pj"]  # the defaults carry their own
    yml = tmp_path / "chip.yaml"
    yml.write_text("name: chip\nac_pj: 0.5\nmac_pj: 2.0\n")
    assert get_target("loihi", yml).mac_pj == 2.0  # a file wins over a name


@pytest.mark.parametrize("suffix,text,message", [
    (".toml", 'name = "x"\nac_pj = \n', "not valid TOML"),
    (".yaml", "name: [x\n", "not valid YAML"),
    (".yaml", "- 1\n- 2\n", "must be a mapping"),
    (".yaml", "name: x\nac_pj: 1.0\nmac_pj: 1.0\nvolts: 3\n", "unknown field"),
    (".yaml", "name: x\nac_pj: 1.0\n", "missing field"),
    (".toml", 'name = "x"\nac_pj = "cheap"\nmac_pj = 1.0\n', "ac_pj"),
    (".yaml", "name: x\nac_pj: 1e-3\nmac_pj: 1.0\n", "write 1.0e-3"),
])
def test_malformed_target_files_are_one_line_errors(tmp_path, suffix, text, message):
    path = tmp_path / f"t{suffix}"
    path.write_text(text)
    with pytest.raises(TargetError, match=message) as err:
        load_target_file(path)
    assert "\n" not in str(err.value)


def test_unknown_target_names_the_choices():
    with pytest.raises(TargetError, match="cmos45nm, loihi"):
        get_target("tpu")
