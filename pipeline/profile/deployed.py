"""The deployed network, profiled: a Loihi file run in the bit-accurate simulator, its fixed-point
spikes counted as `stage` counts a float model.

``snnpipe profile FILE.net.h5`` reads the file (a netx file, snnpipe's or one lava-dl's
``export_hdf5`` wrote, or snnpipe's Loihi graph file: `graph_file.read_loihi`), runs the test set
through `LoihiSimulator`, which equals Lava's ``Loihi2SimCfg(select_tag="fixed_pt")`` spike for spike,
and counts what ran:

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

The counts reach the same summary as a float model's (`stage._summarize`, through `DeployedCounts`,
which has the `Recorder`'s fields): every energy estimate of a profile prices them alike.

Data: the file's root attributes name the dataset, its split seed and normalization, T and the
encoding (snnpipe's export writes them; `pipeline.export.data_metadata`); options fill in or override
them, and a file without them (lava-dl's) needs ``dataset``, ``encoding`` and ``timesteps`` named. A
netx input layer takes spikes (``rate``, ``latency``); a graph file with graded input takes the
``direct`` (analog) input. A 1-d input layer takes the images flattened in (C, H, W) order.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Iterable

import torch
import torch.nn.functional as F
from torch import Tensor

from snnpipe.hw_targets.energy import EnergyTarget
from snnpipe.hw_targets.loihi import fixed_point as fx
from snnpipe.hw_targets.loihi.graph import Connection, GraphNode, LoihiGraph
from snnpipe.hw_targets.loihi.simulator import LoihiSimulator, SimulationResult
from snnpipe.pipeline.checkpoint import Checkpoint
from snnpipe.pipeline.data import TEST_BATCH_SIZE
from snnpipe.pipeline.profile.counting import SYNAPTIC_OPS, SpikeSource, SynapticCounts
from snnpipe.pipeline.profile.metrics import NeuronActivity, SynapticOperations
from snnpipe.pipeline.profile.schema import Profile, ProfileError
from snnpipe.pipeline.profile.stage import _batches, _energy_target, _summarize

#: The encodings whose input is spikes: what a netx input layer (unary events) takes.
SPIKE_ENCODINGS = ("rate", "latency")
#: State variables per CUBA neuron: the current u and the voltage v.
CUBA_STATE_VARIABLES = 2


@dataclass
class DeployedCounts:
    """A fixed-point run's counts with the fields `stage._summarize` reads from a `Recorder`.

    Attributes:
        synops: per connection and step, its operations summed over the samples.
        activity: per node and step, its spikes summed over the samples; its neurons and state size.
        order: layer name -> its place in the report (each node's connections, then its neurons).
        types: layer name -> what runs it on Loihi (``Dense``, ``Conv``, ``LIF``).
    """

    synops: SynapticOperations
    activity: NeuronActivity
    order: dict[str, int] = field(default_factory=dict)
    types: dict[str, str] = field(default_factory=dict)


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
            for connection in node.connections:
                self._place(connection.name, connection.kind.capitalize())
                self.synapses.append((connection, node, index.get(connection.source, -1), _counter(connection)))
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
        for connection, node, source, counter in self.synapses:
            rows = (source_input if source < 0 else result.spikes[source].float()).reshape(steps * batch, *connection.in_shape)
            spiking = source >= 0 or not graph.graded
            out = torch.empty(steps * batch, *node.out_shape, device="meta")
            calls = counter.reduce(rows, out, SpikeSource(rows) if spiking else None, steps=steps, layout="time")
            self.counts.synops.update(connection.name, counter.counts(calls))
        return result


def _counter(connection: Connection) -> SynapticCounts:
    """The profiler's counter of a connection, on the weights Lava holds (their nonzero pattern is
    what the fan-out counts)."""
    if connection.kind == "dense":
        weight = torch.as_tensor(fx.dense_synapse_format(connection.weight).weights, dtype=torch.float64)
        return SynapticCounts(SYNAPTIC_OPS[F.linear], weight)
    weight = torch.as_tensor(connection.weight, dtype=torch.float64)
    args = (connection.stride, connection.padding, connection.dilation, connection.groups)
    return SynapticCounts(SYNAPTIC_OPS[F.conv2d], weight, args)


def count_deployed(graph: LoihiGraph, data: Any, timesteps: int | None = None, target: EnergyTarget | str | None = None,
                   *, target_file: str | Path | None = None, name: str = "deployed", num_classes: int | None = None,
                   progress: bool = False) -> Profile:
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

    Raises:
        ProfileError: no data, or batches of another shape than the file's input.
    """
    energy = _energy_target(target, target_file)
    batches: Iterable = _batches(data)
    if progress:
        from tqdm import tqdm

        batches = tqdm(batches, desc="profile (Loihi fixed point)", unit="batch", leave=False)
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
    return _summarize(counter.counts, SimpleNamespace(zoo_name=name), counter.steps, samples, energy, True, accuracy)


@dataclass(frozen=True)
class DataPlan:
    """What the deployed file is run on: a dataset's test set, encoded."""

    dataset: str
    encoding: str
    timesteps: int
    mean: tuple[float, ...] | None
    std: tuple[float, ...] | None
    split_seed: int


def _text(value: Any) -> str | None:
    """An HDF5 string attribute (bytes or str) as str."""
    return value.decode() if isinstance(value, bytes) else (None if value is None else str(value))


def _attr_list(value: Any) -> tuple[float, ...] | None:
    if value is None:
        return None
    return tuple(float(v) for v in (value.tolist() if hasattr(value, "tolist") else value))


def data_plan(path: Path, attrs: dict[str, Any], dataset: str | None, encoding: str | None,
              timesteps: int | None) -> DataPlan:
    """The file's own data (its root attributes), with the options in their place where given.

    Raises:
        ProfileError: one line naming the option that is missing (a file that does not say).
    """
    own = _text(attrs.get("dataset"))
    normalization = dataset is None or dataset == own  # the file's mean and std are its own dataset's
    dataset = dataset or own
    encoding = encoding or _text(attrs.get("encoding"))
    timesteps = timesteps or (int(attrs["timesteps"]) if attrs.get("timesteps") is not None else None)
    missing = [option for option, value in (("--dataset", dataset), ("--encoding", encoding), ("--timesteps", timesteps))
               if value is None]
    if missing:
        raise ProfileError(f"{path} does not say what data it runs on (a file lava-dl or an older snnpipe wrote): "
                           f"name it with {', '.join(missing)} (e.g. --dataset digits --encoding rate --timesteps 8)")
    if timesteps < 1:
        raise ProfileError(f"--timesteps {timesteps} is out of range: at least 1")
    mean, std = (_attr_list(attrs.get("mean")), _attr_list(attrs.get("std"))) if normalization else (None, None)
    return DataPlan(dataset, encoding, int(timesteps), mean, std, int(attrs.get("data_seed", 0)))


def check_input(path: Path, graph: LoihiGraph, encoding: str) -> None:
    """The encoding fits the file's input layer: spikes for a netx file, analog for graded input.

    Raises:
        ProfileError: one line, naming the file and what it takes.
    """
    if graph.graded and encoding in SPIKE_ENCODINGS:
        raise ProfileError(f"{path} takes graded (direct-coded, analog) input; --encoding {encoding} gives spikes: "
                           "use --encoding direct")
    if not graph.graded and encoding not in SPIKE_ENCODINGS:
        raise ProfileError(f"{path} takes spikes (a netx input layer carries unary events); --encoding {encoding} "
                           f"gives analog input: use --encoding {' or '.join(SPIKE_ENCODINGS)}")


def _fit(batches, shape: tuple[int, ...], graph: LoihiGraph, path: Path):
    """The batches shaped as the file's input: as they are, or flattened for a 1-d input layer."""
    if tuple(shape) == graph.input_shape:
        return batches
    if len(graph.input_shape) == 1 and math.prod(shape) == graph.input_shape[0]:
        return lambda: ((x.reshape(*x.shape[:2], -1), y) for x, y in batches())
    raise ProfileError(f"{path} takes input of shape {'x'.join(map(str, graph.input_shape))}; the dataset's images are "
                       f"{'x'.join(map(str, shape))}: name the dataset it was trained on with --dataset")


def read_deployed(path: str | Path) -> tuple[LoihiGraph, dict[str, Any]]:
    """The network in a Loihi file (netx or graph) and its root attributes.

    Raises:
        SnnpipeError: a missing, damaged or unsupported file (`graph_file.read_loihi`), one line.
    """
    from snnpipe.hw_targets.loihi.graph_file import read_loihi

    return read_loihi(path)


def _model_name(path: Path) -> str:
    name = path.name
    for suffix in (".net.h5", ".graph.h5", ".h5", ".hdf5", ".net"):
        if name.endswith(suffix):
            return name[: -len(suffix)] or name
    return name


def profile_deployed(
    path: str | Path,
    data_dir: str | Path | None = None,
    *,
    checkpoint: Checkpoint | str | Path | None = None,
    dataset: str | None = None,
    encoding: str | None = None,
    timesteps: int | None = None,
    samples: int | None = 1000,
    batch_size: int = TEST_BATCH_SIZE,
    target: EnergyTarget | str | None = None,
    target_file: str | Path | None = None,
    progress: bool = False,
) -> Profile:
    """Profile the network a Loihi file holds on a test set, in Loihi's fixed point.

    Args:
        path: a netx file (snnpipe's or lava-dl's) or a Loihi graph file.
        data_dir: the folder holding the dataset, where it is not the default.
        checkpoint: run it on this checkpoint's encoded test set, exactly the spikes its own profile
            sees (`pipeline.export.encoded_test_batches`): the float profile's twin.
        dataset, encoding, timesteps: override (or, for a file that does not say, give) the data.
        samples: the first test samples (None: all).
        batch_size: samples per simulator run.
        target, target_file: the energy target.
        progress: a progress bar.

    Raises:
        SnnpipeError: an unreadable or unsupported file, missing data options, data that does not
            fit the file; one line each.
    """
    from snnpipe.pipeline.data import dataset_entry, load_dataset
    from snnpipe.pipeline.export import encoded_batches, encoded_test_batches

    path = Path(path)
    graph, attrs = read_deployed(path)
    if checkpoint is not None:
        ckpt = checkpoint if isinstance(checkpoint, Checkpoint) else Checkpoint.load(checkpoint)
        if dataset is not None and dataset != ckpt.data.name:
            ckpt = replace(ckpt, data=replace(ckpt.data, name=dataset))
        for key, own in (("encoding", ckpt.encoding), ("dataset", None if dataset else ckpt.data.name)):
            written = _text(attrs.get(key))
            if None not in (written, own) and written != own:
                raise ProfileError(f"{path} was exported for {written} {key}; the checkpoint's is {own}: profile it "
                                   "beside the checkpoint it was exported from")
        plan = DataPlan(ckpt.data.name, ckpt.encoding, timesteps or ckpt.timesteps, ckpt.data.mean, ckpt.data.std, 0)
        check_input(path, graph, plan.encoding)
        batches = encoded_test_batches(ckpt, data_dir, samples, batch_size=batch_size, timesteps=plan.timesteps)
        shape, num_classes = ckpt.data.input_shape, ckpt.data.num_classes
    else:
        plan = data_plan(path, attrs, dataset, encoding, timesteps)
        check_input(path, graph, plan.encoding)
        entry = dataset_entry(plan.dataset)
        mean, std = plan.mean, plan.std
        if mean is None or std is None:  # the dataset's own, as training computes them
            spec = load_dataset(plan.dataset, data_dir, seed=plan.split_seed).spec
            mean, std = spec.mean, spec.std
        batches = encoded_batches(plan.dataset, plan.encoding, plan.timesteps, mean, std, plan.split_seed, data_dir,
                                  samples, batch_size)
        shape, num_classes = entry.input_shape, entry.num_classes
    result = count_deployed(graph, _fit(batches, shape, graph, path)(), plan.timesteps, target, target_file=target_file,
                            name=f"{_model_name(path)} (Loihi fixed point)", num_classes=num_classes, progress=progress)
    result.dataset, result.encoding = plan.dataset, plan.encoding
    return result
