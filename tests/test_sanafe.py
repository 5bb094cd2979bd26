"""SANA-FE behind its process boundary: the environment check, and its own validation network."""

import sys

import pytest

from snnpipe.hw_targets.loihi.sanafe_bridge import SanafeUnavailableError, run_sanafe, sanafe_python


def test_a_python_without_sanafe_is_refused_in_one_line():
    with pytest.raises(SanafeUnavailableError, match="has no sanafe 2.2.9"):
        sanafe_python(sys.executable)


@pytest.mark.sanafe
def test_sanafe_reproduces_its_tutorials_dvs_gesture_run():
    """SANA-FE's tutorial 5 checks 365277 neurons fired in 1000 steps of its DVS gesture network;
    the per-step energy and latency lie in the paper's measured ranges (1-4 uJ, 10-30 us)."""
    answer = run_sanafe({"job": "dvs_gesture", "steps": 1000})
    assert answer["neurons_fired"] == 365277
    assert answer["neurons"] == [1024, 3600, 5408, 7744, 891, 11]
    assert 1e-6 <= answer["energy_per_step_j"] <= 4e-6
    assert 10e-6 <= answer["time_per_step_s"] <= 30e-6
    parts = answer["energy_j"]
    assert parts["total"] == pytest.approx(parts["synapse"] + parts["dendrite"] + parts["soma"] + parts["network"])
