"""The memory estimate's counts (`pipeline.memory.model_size`), by hand on small zoo models."""

import sys

from snnpipe.models.params import NeuronParams
from snnpipe.pipeline.memory import model_size


def test_parameters_and_neurons_of_an_mlp_by_hand():
    # 64 -> 16 -> 8 -> 10: weights and biases 64*16+16 + 16*8+8 + 8*10+10; a LIF after each hidden layer
    size = model_size("mlp", {"hidden": (16, 8)}, (1, 8, 8), 10, NeuronParams())
    assert (size.parameters, size.neurons, size.delay_steps) == (1266, 24, 0)


def test_neurons_of_the_conv_net_by_hand():
    # 32 x 28 x 28 after the first conv, 64 x 14 x 14 after the second, 128 in the hidden FC layer
    size = model_size("convnet", {}, (1, 28, 28), 10, NeuronParams())
    assert size.neurons == 32 * 28 * 28 + 64 * 14 * 14 + 128


def test_counting_does_not_load_torchs_decompositions(tmp_path):
    """A meta-device forward pass imports torch's decompositions, sympy and mpmath (seconds at every start)."""
    import subprocess

    code = ("import sys; from snnpipe.pipeline.memory import model_size; "
            "model_size('convnet', {}, (1, 28, 28), 10); print('sympy' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.stdout.strip() == "False", done.stderr
