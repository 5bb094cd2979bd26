"""``benchmarks/loihi_sim.py``'s report (issue 23, item 27): Lava's time over ours batched and over
ours one sample at a time (as Lava runs), beside the network's neurons and synapses; numbers by hand."""

import importlib.util
from pathlib import Path

_PATH = Path(__file__).resolve().parent.parent / "benchmarks" / "loihi_sim.py"
_spec = importlib.util.spec_from_file_location("loihi_sim", _PATH)
loihi_sim = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(loihi_sim)


def test_the_report_gives_both_ratios_beside_the_network_size():
    # ours: 0.5 s batched, 2 s one sample at a time; Lava 100 s in the runner, 150 s in all
    row = {"network": "mlp", "format": "netx", "layers": 2, "relays": 0, "neurons": 138, "synapses": 9472,
           "samples": 4, "timesteps": 8, "steps": 10, "spikes": 1234, "spikes_equal": True,
           "ours_seconds": 0.5, "ours_seconds_per_sample": 2.0, "lava_seconds_run": 100.0, "lava_seconds_total": 150.0,
           "speedup_run": 200.0, "speedup_total": 300.0, "speedup_run_per_sample": 50.0, "speedup_total_per_sample": 75.0,
           "load_average": 1.5, "threads": 1, "torch": "2", "machine": "x86_64", "command": "python x", "met": True}
    text = "\n".join(loihi_sim.markdown(row))
    assert "Network: 2 layers (0 relays), 138 neurons, 9,472 synapses (netx)." in text
    assert "load average 1.50" in text
    # seconds, ms per sample-step (40 sample-steps), over ours batched, over ours one at a time
    assert "| snnpipe LoihiSimulator, batched | 0.5 | 12.5 | 1x | 0.25x |" in text
    assert "| snnpipe LoihiSimulator, one sample at a time (as Lava runs) | 2 | 50 | 4x | 1x |" in text
    assert "| Lava fixed_pt, run (in the runner) | 100 | 2500 | 200x | 50x |" in text
    assert "| Lava fixed_pt, whole subprocess | 150 | 3750 | 300x | 75x |" in text
    assert "200x batched, 50.0x one sample at a time" in text
