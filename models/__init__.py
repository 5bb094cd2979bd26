"""Neurons, layers and the model zoo (the lowest floor: imports nothing else of snnpipe but errors)."""

from snnpipe.models.layers import SpikingModel, execution_mode, finish_record, firing_rate
from snnpipe.models.neurons import CubaLIF, ExecutionMode, NeuronParams, ReLU, cuba_lif_step
from snnpipe.models.zoo import MODELS, count_parameters, create_model, register_model, topology
import snnpipe.models.graph  # noqa: E402,F401  registers the data-described models "sequential" and "graph"

__all__ = [
    "MODELS", "CubaLIF", "ExecutionMode", "NeuronParams", "ReLU", "SpikingModel",
    "count_parameters", "create_model", "cuba_lif_step", "execution_mode", "finish_record",
    "firing_rate", "register_model",
]
