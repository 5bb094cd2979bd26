"""Counting a deployed network: a `LoihiGraph` run in the bit-accurate simulator, its fixed-point
spikes and synaptic operations counted as `stage` counts a float model.

`count_deployed` runs the batches through `LoihiSimulator`, which equals Lava's
``Loihi2SimCfg(select_tag="fixed_pt")`` spike for spike, and counts what ran:

- every node is a neuron layer named ``<node>.neuron`` (Lava's ``LIF``; the readout's and the
  relays' too: they update on the chip): its spikes per step, neurons x steps updates, u and v as
  its state;
- every connection is a synaptic layer named after it (the module path it was exported from, or
  ``layer/<i>`` in a file without names): its operations per step by `counting.SynapticCounts`, the
  profiler's own definitions, on the integer weights Lava holds (`fixed_point.dense_synapse_format`:
  a weight Lava truncates to 0 reaches no one). A spike costs its fan-out (ACs); graded input (a
  direct-coded graph) is counted by value, MACs where it is not 0/1.

Timing is Lava's: ``steps = T + depth``; a connection's operations fall on the step its source sent
the spikes (Lava's ``Dense`` adds them up then and delivers them a step later), which is where a
float model trained in Loihi's timing (``delay_shift``) has them, so both profiles share their steps.

The counts reach the same summary as a float model's (`stage.summarize_counts`, through
`DeployedCounts`, which has the `Recorder`'s fields): every energy estimate of a profile prices them
alike. Each connection's structure (weights, fan-in, kernel, fan-out, inputs and outputs) is its
counter's; a node's bias (Lava's ``bias_mant``, added to every neuron at every step) is counted on its
first connection, where a float layer's bias is; the per-sample counts give the standard errors.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Iterable

import torch
import torch.nn.functional as F
from torch import Tensor

from snnpipe.hw_targets.chip import Chip
from snnpipe.hw_targets.energy import EnergyTarget
from snnpipe.hw_targets.precision import Precision
from snnpipe.hw_targets.loihi import fixed_point as fx
from snnpipe.hw_targets.loihi.graph import Connection, GraphNode, LoihiGraph
from snnpipe.hw_targets.loihi.simulator import LoihiSimulator, SimulationResult
from snnpipe.pipeline.profile.counting import SYNAPTIC_OPS, SpikeSource, SynapticCounts, sample_sums
from snnpipe.pipeline.profile.metrics import NeuronActivity, SynapticOperations
from snnpipe.pipeline.profile.schema import Profile, ProfileError
from snnpipe.pipeline.profile.stage import batches_of, energy_settings, summarize_counts
from snnpipe.progress import bar as progress_bar

#: State variables per CUBA neuron: the current u and the voltage v.
CUBA_STATE_VARIABLES = 2


@dataclass
class DeployedCounts:
    """A fixed-point run's counts with the fields `stage.summarize_counts` reads from a `Recorder`.

    Attributes:
        synops: per connection and step, its operations summed over the samples.
        activity: per node and step, its spikes summed over the samples; its neurons and state size.
        order: layer name -> its place in the report (each node's connections, then its neurons).
        types: layer name -> what runs it on Loihi (``Dense``, ``Conv``, ``LIF``).
        counters: connection name -> its `SynapticCounts` (its structure, for the energy models).
    """

    synops: SynapticOperations
    activity: NeuronActivity
    order: dict[str, int] = field(default_factory=dict)
    types: dict[str, str] = field(default_factory=dict)
    counters: dict[str, SynapticCounts] = field(default_factory=dict)


def neuron_name(node: GraphNode) -> str:
    """The report's name of a node's neurons."""
    return f"{node.name}.neuron"


class DeployedCounter:
    """Runs a `LoihiGraph` batch by batch and counts its spikes and synaptic operations.

    Args:
        graph: the deployed network.
        timesteps: T, the input steps of every batch; the run has ``graph.steps_for(T)`` steps.
    """

    def __init__(self, graph: LoihiGraph, timesteps: int) -> None:
        self.graph, self.timesteps = graph, timesteps
        self.steps = graph.steps_for(timesteps)
        self.simulator = LoihiSimulator(graph)
        self.counts = DeployedCounts(SynapticOperations(self.steps), NeuronActivity(self.steps))
        index = {node.name: i for i, node in enumerate(graph.nodes)}
        self.synapses: list[tuple[Connection, GraphNode, int, SynapticCounts]] = []
        for node in graph.nodes:
            for i, connection in enumerate(node.connections):
                self._place(connection.name, connection.kind.capitalize())
                counter = _counter(connection, node.bias if i == 0 else None)
                self.counts.counters[connection.name] = counter
                self.synapses.append((connection, node, index.get(connection.source, -1), counter))
            kind = "LIF (readout)" if node.neuron.readout else "LIF (relay)" if node.relay else "LIF"
            self._place(neuron_name(node), kind)

    def _place(self, name: str, kind: str) -> None:
        if name in self.counts.order:
            raise ProfileError(f"the file names two layers {name!r}; the profile needs one name per layer")
        self.counts.order[name], self.counts.types[name] = len(self.counts.order), kind

    def update(self, x: Tensor) -> SimulationResult:
        """Run one batch x (T, B, *input_shape), spikes or the analog input of a graded graph, and
        add its counts; returns the simulator's result."""
        graph, steps = self.graph, self.steps
        if x.shape[0] != self.timesteps:
            raise ProfileError(f"a batch of shape {tuple(x.shape)} is not (T={self.timesteps}, B, ...)")
        result = self.simulator.run(x, record_spikes=True)
        batch = x.shape[1]
        source_input = torch.zeros(steps, batch, *graph.input_shape)
        source_input[:self.timesteps] = graph.quantize_input(x.float())
        for node, spikes in zip(graph.nodes, result.spikes):
            per_step = spikes.reshape(steps, -1).sum(1, dtype=torch.float64).tolist()
            self.counts.activity.update(neuron_name(node), per_step, node.neurons, CUBA_STATE_VARIABLES * node.neurons)
            per_sample = spikes.reshape(steps, batch, -1).sum((0, 2), dtype=torch.float64)
            self.counts.activity.update_samples(neuron_name(node), spikes=per_sample, active=per_sample)
        for connection, node, source, counter in self.synapses:
            rows = (source_input if source < 0 else result.spikes[source].float()).reshape(steps * batch, *connection.in_shape)
            spiking = source >= 0 or not graph.graded
            out = torch.empty(steps * batch, *node.out_shape, device="meta")
            calls = counter.reduce(rows, out, SpikeSource(rows, network_input=not spiking), steps=steps, layout="time")
            per_step = counter.counts(calls)
            self.counts.synops.update(connection.name, per_step)
            self.counts.synops.update_samples(connection.name, **sample_sums(per_step, batch))
        return result


def _counter(connection: Connection, bias: Any = None) -> SynapticCounts:
    """The profiler's counter of a connection, on the weights Lava holds (their nonzero pattern is
    what the fan-out counts); ``bias``: its node's bias mantissas, where they are counted on it."""
    bias = None if bias is None else torch.as_tensor(bias)
    if connection.kind == "dense":
        weight = torch.as_tensor(fx.dense_synapse_format(connection.weight).weights, dtype=torch.float64)
        return SynapticCounts(SYNAPTIC_OPS[F.linear], weight, bias=bias)
    weight = torch.as_tensor(connection.weight, dtype=torch.float64)
    args = (connection.stride, connection.padding, connection.dilation, connection.groups)
    return SynapticCounts(SYNAPTIC_OPS[F.conv2d], weight, args, bias=bias)


def count_deployed(graph: LoihiGraph, data: Any, timesteps: int | None = None, target: EnergyTarget | str | None = None,
                   *, target_file: str | Path | None = None, name: str = "deployed", num_classes: int | None = None,
                   progress: bool = False, energy_model: str = "ops", precision: str | Precision = "int8",
                   chip: str | Chip | None = None, chip_file: str | Path | None = None) -> Profile:
    """Profile ``graph`` on ``data`` in the bit-accurate simulator.

    Args:
        graph: the deployed network (`graph_file.read_loihi`).
        data: a (T, B, ...) tensor or an iterable of x or (x, y) batches, x as the file's input
            layer takes it (spikes, or the analog input of a graded graph).
        timesteps: T; by default the first batch's.
        target, target_file: the energy target, as for `stage.profile_module`.
        name: the profile's model name.
        num_classes: the labels' classes; the accuracy is measured where the output has as many
            neurons (the class is the readout's largest voltage, or the most spikes).
        progress: a progress bar over the batches.
        energy_model, precision, chip, chip_file: the energy estimates, as for `stage.profile_module`
            (``int8``, the default precision, is the file's: its weights are 8-bit).

    Raises:
        ProfileError: no data, or batches of another shape than the file's input.
    """
    energy = energy_settings(target, target_file, energy_model, precision, chip, chip_file)
    batches: Iterable = progress_bar(batches_of(data), desc="profile (Loihi fixed point)", unit="batch", show=progress)
    counter: DeployedCounter | None = None
    samples = labelled = correct = 0
    scored = num_classes is None or num_classes == math.prod(graph.output_shape)
    for x, y in batches:
        if x.dim() != len(graph.input_shape) + 2 or tuple(x.shape[2:]) != graph.input_shape:
            raise ProfileError(f"a batch of shape {tuple(x.shape)} does not fit the file's input: "
                               f"(T, B, {', '.join(map(str, graph.input_shape))}) expected")
        if counter is None:
            counter = DeployedCounter(graph, timesteps or int(x.shape[0]))
        result = counter.update(x)
        samples += int(x.shape[1])
        if y is not None and scored:
            labelled += len(y)
            correct += int((result.predictions() == y).sum())
    if counter is None or samples == 0:
        raise ProfileError("no data to profile: the data gave no batch")
    accuracy = correct / labelled if labelled else None
    return summarize_counts(counter.counts, SimpleNamespace(zoo_name=name), counter.timesteps,
                            counter.steps - counter.timesteps, samples, energy, True, accuracy)
