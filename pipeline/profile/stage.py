"""The profile stage: ``profile_module(model, data, T)`` and ``profile_checkpoint(checkpoint)`` ->
`Profile`, spikes, synaptic operations, energy and data movement per layer and per timestep, for an
SNN and its ANN twin (what is counted: `counting`; energy: `energy`; ``profile()`` picks one of the
two by its argument).

**Contract for any model** (the zoo is one case of it): ``profile_module(model, data, timesteps)``.

- ``data``: a tensor x of shape (T, B, ...), or an iterable of such x or of ``(x, y)`` batches
  (y: labels, for accuracy).
- ``run(model, x) -> logits (B, classes)`` runs your time loop; by default ``model(x).mean(0)``
  (a zoo model or any module that takes (T, B, ...) and returns (T, B, classes)).
- Within one batch every synaptic layer (``nn.Linear``, ``nn.Conv*d``, ``nn.ConvTranspose*d``, or
  ``F.linear``, ``F.conv*d``, ``F.conv_transpose*d`` in your code) runs once per timestep on that
  step's (B, ...) input (B = 1 may drop the batch axis), or on steps of the sequence at once (all
  of (T, B, ...), its (T*B, ...) flattening, or parts of it), or exactly once on (B, ...): before the
  time loop that is a static input, counted at every step; after it, a readout, counted once.
- Neuron layers (`frameworks`: snnpipe, snnTorch, SpikingJelly single- and multi-step, Norse cells
  and sequences, Sinabs) cover the T steps one call per step or in one call. Reset their state
  inside ``run``. Their own computation is not intercepted (`hooks`): a synapse inside a neuron
  layer (a recurrent weight) must be a parameter or buffer of it, as in Norse's recurrent cells.
- Anything else is a `ProfileError` naming the layer: a layer that runs another number of times, a
  contraction of a weight the profiler does not count (``x @ self.w``, ``nn.LSTM``, ``nn.Embedding``).
  Spikes changed in place before the next layer (``s.mul_(0.5)``) are no longer spikes: that layer
  counts them by their values (NeuroBench's test: MACs unless every value is 0 or 1).

Example, a snnTorch model with its own loop::

    def run(net, x):
        mem = net.lif.init_leaky()
        out = []
        for x_t in x:
            spk, mem = net.lif(net.fc(x_t), mem)
            out.append(net.fc2(spk))
        return torch.stack(out).mean(0)

    p = profile_module(net, [(x, y)], timesteps=25, run=run, target="loihi")
    p.totals.acs, p.totals.compute_energy_uj
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Iterator

import torch
from torch import Tensor, nn

from snnpipe.hw_targets.chip import Chip, get_chip
from snnpipe.hw_targets.energy import EnergyTarget, get_target
from snnpipe.hw_targets.precision import Precision, get_precision
from snnpipe.pipeline.checkpoint import Checkpoint
from snnpipe.pipeline.data import TEST_BATCH_SIZE
from snnpipe.pipeline.memory import check_inference
from snnpipe.pipeline.profile.counting import SynapticCounts
from snnpipe.pipeline.profile.energy import ComputeEnergy, compare, totals
from snnpipe.pipeline.profile.frameworks import is_spiking_neuron
from snnpipe.pipeline.profile.hooks import Recorder
from snnpipe.pipeline.profile.schema import LayerProfile, NeuronProfile, Profile, ProfileError, SynapseProfile
from snnpipe.pipeline.profile.verdict import estimate_energy, stderr
from snnpipe.progress import bar as progress_bar


def _default_run(model: nn.Module, x: Tensor) -> Tensor:
    return model(x).mean(0)


def batches_of(data: Any) -> Iterator[tuple[Tensor, Tensor | None]]:
    """The (x, y) batches of the contract's ``data``: a (T, B, ...) tensor, or an iterable of x or
    (x, y) batches; y is None where there are no labels.

    Raises:
        ProfileError: data or a batch of another kind, one line.
    """
    if isinstance(data, Tensor):
        yield data, None
        return
    try:
        iterator = iter(data)
    except TypeError:
        raise ProfileError(f"data must be a (T, B, ...) tensor or an iterable of batches, not {type(data).__name__}") from None
    for batch in iterator:
        if isinstance(batch, Tensor):
            yield batch, None
        elif isinstance(batch, (tuple, list)) and batch and isinstance(batch[0], Tensor):
            yield batch[0], (batch[1] if len(batch) > 1 else None)
        else:
            raise ProfileError(f"a batch must be x or (x, y) with x a (T, B, ...) tensor, not {type(batch).__name__}")


@dataclass(frozen=True)
class EnergySettings:
    """How a profile prices its counts: the ``ops`` target (its compute and data-movement fields), the
    energy model of its estimates, the SNN's precision (``memory``) and the chip (``chip``)."""

    target: EnergyTarget
    model: str = "ops"
    precision: Precision = get_precision("int8")
    chip: Chip = get_chip("loihi2")


def energy_target(target: EnergyTarget | str | None, target_file: str | Path | None) -> EnergyTarget:
    """The energy target a profile prices its counts with: ``target`` itself, by name, or from
    ``target_file`` (`hw_targets.energy.get_target`; neither: its default).

    Raises:
        ProfileError: a name and a file both given.
        TargetError: an unknown name or an invalid file (`hw_targets.energy.get_target`).
    """
    if target is not None and target_file is not None and not isinstance(target, EnergyTarget):
        raise ProfileError("give an energy target by name or a target file, not both")
    return target if isinstance(target, EnergyTarget) else get_target(target, target_file)


def energy_settings(target: EnergyTarget | str | None = None, target_file: str | Path | None = None,
                    energy_model: str = "ops", precision: str | Precision = "int8", chip: str | Chip | None = None,
                    chip_file: str | Path | None = None) -> EnergySettings:
    """The settings from names or files. Raises SnnpipeError for an unknown name or a bad file."""
    from snnpipe.pipeline.profile.estimators import ENERGY_MODELS

    if energy_model not in ENERGY_MODELS:
        raise ProfileError(f"unknown energy model {energy_model!r}: choose one of {', '.join(ENERGY_MODELS)}")
    if chip is not None and chip_file is not None and not isinstance(chip, Chip):
        raise ProfileError("give a chip by name or a chip file, not both")
    try:
        precision = precision if isinstance(precision, Precision) else get_precision(precision)
    except ValueError as err:
        raise ProfileError(str(err)) from None
    settings = EnergySettings(energy_target(target, target_file), energy_model, precision,
                              chip if isinstance(chip, Chip) else get_chip(chip, chip_file))
    if (chip is not None or chip_file is not None) and energy_model != "chip":  # else priced without it, unsaid
        raise ProfileError(f"--chip and --chip-file choose the chip of --energy-model chip; this profile prices under "
                           f"{energy_model!r}: add --energy-model chip, or leave them out")
    return settings


def profile_module(
    model: nn.Module,
    data: Any,
    timesteps: int | None = None,
    target: EnergyTarget | str | None = None,
    *,
    target_file: str | Path | None = None,
    run: Callable[[nn.Module, Tensor], Tensor] | None = None,
    spiking: bool | None = None,
    ann_twin: nn.Module | None = None,
    progress: bool = False,
    world=None,
    energy_model: str = "ops",
    precision: str | Precision = "int8",
    chip: str | Chip | None = None,
    chip_file: str | Path | None = None,
) -> Profile:
    """Profile any ``nn.Module`` on ``data`` under the contract of the module docstring.

    Args:
        model: the network; put in eval mode while profiled, its mode restored afterwards.
        data: a (T, B, ...) tensor, or an iterable of x or (x, y) batches.
        timesteps: T; by default the first batch's leading size.
        target: a registered energy target (default ``cmos45nm``) or an `EnergyTarget`.
        target_file: a TOML/YAML target file instead of ``target``.
        run: ``run(model, x) -> logits (B, classes)``; default ``model(x).mean(0)``.
        spiking: count it as an SNN (ACs where the input is spikes) or as an ANN (every synaptic
            op a MAC); by default, whether it has a spiking neuron of a registered framework.
        ann_twin: its ANN twin, profiled beside it at T = 1 on the time-averaged input.
        progress: show a progress bar over the batches.
        world: a `distributed.World`: each rank counts every ``world.size``-th batch; the counts
            are summed over the ranks.
        energy_model: the model of the energy estimates (``ops``, ``memory``, ``chip``:
            `snnpipe.pipeline.profile.estimators`), the SNN against its ANN baselines.
        precision: the SNN's arithmetic and weights under ``memory`` (``int8``: the Loihi export's
            8-bit weights; ``fp32``, ``fp16``).
        chip, chip_file: the chip under ``chip`` (default ``loihi2``), by name or a TOML/YAML file.

    Raises:
        ProfileError: no data, data the model cannot take, or a model that breaks the contract.
    """
    energy = energy_settings(target, target_file, energy_model, precision, chip, chip_file)
    if data is None or isinstance(data, (str, Path)):
        raise ProfileError("profiling a module needs data: a (T, B, ...) tensor or an iterable of batches")
    result = _count(model, data, timesteps, energy, run, spiking, progress, world)
    if ann_twin is not None:
        twin_data = ((x.mean(0, keepdim=True), y) for x, y in batches_of(data))
        twin = _count(ann_twin, twin_data, 1, energy, run, False, False, world)
        result.ann, result.comparison = twin, compare(result, twin)
    return result


def profile_checkpoint(
    checkpoint: Checkpoint | str | Path,
    data: Any = None,
    timesteps: int | None = None,
    target: EnergyTarget | str | None = None,
    *,
    target_file: str | Path | None = None,
    samples: int | None = 1000,
    dataset: str | None = None,
    batch_size: int = TEST_BATCH_SIZE,
    progress: bool = False,
    world=None,
    energy_model: str = "ops",
    precision: str | Precision = "int8",
    chip: str | Chip | None = None,
    chip_file: str | Path | None = None,
) -> Profile:
    """Profile a checkpoint's SNN on its test set, and its ANN twin beside it.

    Args:
        checkpoint: a `Checkpoint` or the path of one.
        data: None (its own test set), the folder holding its dataset, or (T, B, ...) batches.
        timesteps: T; the checkpoint's own by default (a checkpoint can be profiled at another T).
        target, target_file: as for `profile_module`.
        samples: the first test samples to run (None: all).
        dataset: profile on another dataset of the same input shape.
        batch_size: the batch size.
        progress, world, energy_model, precision, chip, chip_file: as for `profile_module`.

    Raises:
        SnnpipeError: a checkpoint that does not load, data that does not fit the model, an unknown
            target or a malformed target file.
    """
    from snnpipe.pipeline.export import encoded_test_batches

    energy = energy_settings(target, target_file, energy_model, precision, chip, chip_file)
    ckpt = checkpoint if isinstance(checkpoint, Checkpoint) else Checkpoint.load(checkpoint)
    if timesteps is not None and timesteps != ckpt.timesteps:
        ckpt = replace(ckpt, timesteps=timesteps)
    shape = tuple(ckpt.data.input_shape)
    check_inference(ckpt, "profiling", samples, batch_size, "profile it for fewer timesteps (-T N)")
    model = ckpt.build_model().eval()
    if dataset is not None and dataset != ckpt.data.name:
        from snnpipe.pipeline.data import load_dataset

        other = tuple(load_dataset(dataset, data if isinstance(data, (str, Path)) else None).spec.input_shape)
        if other != shape:
            raise ProfileError(f"{dataset} images are {'x'.join(map(str, other))}; the model takes "
                               f"{ckpt.data.name} {'x'.join(map(str, shape))}: profile it on data of its own shape")
        ckpt = replace(ckpt, data=replace(ckpt.data, name=dataset))
    if data is None or isinstance(data, (str, Path)):
        snn_batches = encoded_test_batches(ckpt, data, samples, batch_size=batch_size)
        ann_batches = encoded_test_batches(replace(ckpt, encoding="direct", timesteps=1), data, samples, batch_size=batch_size)
    else:
        given = list(batches_of(data))
        for x, _ in given:
            if tuple(x.shape[2:]) != shape:
                raise ProfileError(f"data of shape {tuple(x.shape)} does not fit {ckpt.model_name}: "
                                   f"(T, B, {', '.join(map(str, shape))}) expected")
        snn_batches = lambda: iter(given)  # noqa: E731
        ann_batches = lambda: ((x.mean(0, keepdim=True), y) for x, y in given)  # noqa: E731
    result = _count(model, snn_batches(), ckpt.timesteps, energy, spiking=ckpt.spiking, progress=progress, world=world)
    result.model, result.dataset, result.encoding = ckpt.model_name, ckpt.data.name, ckpt.encoding
    if (data is None or isinstance(data, (str, Path))) and samples is not None and result.samples < samples:
        result.samples_requested = samples  # the test set holds fewer: said in the report and on the terminal
    if ckpt.spiking:
        # the twin on the analog input it is trained on: direct encoding, T = 1
        twin = _count(ckpt.build_model(spiking=False), ann_batches(), 1, energy, spiking=False, world=world)
        twin.model, twin.dataset, twin.encoding = ckpt.model_name, ckpt.data.name, "direct"
        result.ann, result.comparison = twin, compare(result, twin)
    return result


def profile(model_or_checkpoint: nn.Module | Checkpoint | str | Path, data: Any = None, timesteps: int | None = None,
            target: EnergyTarget | str | None = None, **options: Any) -> Profile:
    """`profile_module` for an ``nn.Module``, `profile_checkpoint` for a checkpoint or its path;
    ``options`` are theirs (an option of the other one is a TypeError)."""
    if isinstance(model_or_checkpoint, nn.Module):
        return profile_module(model_or_checkpoint, data, timesteps, target, **options)
    return profile_checkpoint(model_or_checkpoint, data, timesteps, target, **options)


def _count(
    model: nn.Module,
    data: Any,
    timesteps: int | None,
    energy: EnergySettings,
    run: Callable[[nn.Module, Tensor], Tensor] | None = None,
    spiking: bool | None = None,
    progress: bool = False,
    world=None,
) -> Profile:
    """Run the model on every batch under a `Recorder` and summarize what it counted."""
    spiking = any(is_spiking_neuron(m) for m in model.modules()) if spiking is None else spiking
    run = run or _default_run
    batches = batches_of(data)
    batches = progress_bar(batches, desc="profile", unit="batch", show=progress)
    was_training = model.training
    model.eval()
    recorder: Recorder | None = None
    samples, labelled, correct = 0, 0, 0
    try:
        with torch.no_grad():
            for i, (x, y) in enumerate(batches):
                if x.dim() < 2:
                    raise ProfileError(f"a batch of shape {tuple(x.shape)} is not (T, B, ...)")
                if timesteps is None:
                    timesteps = int(x.shape[0])
                if x.shape[0] != timesteps:
                    raise ProfileError(f"a batch of shape {tuple(x.shape)} is not (T={timesteps}, B, ...): "
                                       "give the time axis first")
                if recorder is None:
                    recorder = Recorder(model, timesteps + _delay_steps(model, spiking), ann=not spiking)
                if world is not None and world.distributed and i % world.size != world.rank:
                    continue
                recorder.start_batch(int(x.shape[1]), x)
                try:
                    with recorder.intercept():
                        logits = run(model, x)
                except RuntimeError as err:
                    raise ProfileError(f"the model cannot run on a batch of shape {tuple(x.shape)}: "
                                       f"{str(err).strip().splitlines()[0]}") from None
                recorder.finish_batch()
                samples += int(x.shape[1])
                if y is not None and isinstance(logits, Tensor) and logits.dim() == 2:
                    labelled += len(y)
                    correct += int((logits.argmax(1) == y.to(logits.device)).sum())
    finally:
        if recorder is not None:
            recorder.close()
        model.train(was_training)
    if recorder is None:
        raise ProfileError("no data to profile: the data gave no batch")
    if world is not None and world.distributed:
        from snnpipe.pipeline import distributed

        samples, labelled, correct = (int(v) for v in distributed.all_reduce_sum([samples, labelled, correct], world))
        _reduce(recorder, world)
    if samples == 0:
        raise ProfileError("no samples to profile")
    if not recorder.synops.sums:  # after the reduction: a rank that ran no batch knows the others' layers
        raise ProfileError(f"{type(model).__name__} ran no layer to count (linear, conv or transposed conv)")
    accuracy = correct / labelled if labelled else None
    return summarize_counts(recorder, model, timesteps, _delay_steps(model, spiking), samples, energy, spiking, accuracy)


def _delay_steps(model: nn.Module, spiking: bool) -> int:
    """The steps a model in Loihi's timing runs after T (`SpikingModel.delay_steps`); its profile counts
    all of them, as Loihi runs them."""
    return getattr(model, "delay_steps", 0) if spiking else 0


def _reduce(recorder: Recorder, world) -> None:
    from snnpipe.pipeline import distributed

    # a rank that ran no batch has met no synaptic layer: every rank takes the union of the layers
    # (in the order of their first call on any rank), then the sums are reduced in a fixed order
    seen: list[Any] = [None] * world.size
    torch.distributed.all_gather_object(seen, (recorder.order, recorder.types))
    for order, types in seen:
        for name, position in order.items():
            recorder.order[name] = min(recorder.order.get(name, position), position)
            if name not in recorder.types:
                recorder.types[name] = types[name]
                recorder.synops.update(name, [])
    for name in sorted(recorder.synops.sums):
        sums = recorder.synops.sums[name]
        for key in SynapticCounts.FIELDS:
            sums[key] = distributed.all_reduce_sum(sums[key], world)
    for table in (recorder.activity.spikes, recorder.activity.active):
        for name in sorted(table):
            table[name] = distributed.all_reduce_sum(table[name], world)
    # per-sample counts and the layers' structure: every rank's, in rank order
    mine = (recorder.synops.compute_samples(), recorder.activity.compute_samples(),
            {name: _structure(counter) for name, counter in recorder.counters.items()})
    gathered: list[Any] = [None] * world.size
    torch.distributed.all_gather_object(gathered, mine)
    for metric, index in ((recorder.synops, 0), (recorder.activity, 1)):
        metric.samples.reset()
        for part in gathered:
            for name, fields in part[index].items():
                metric.samples.update(name, **fields)
    recorder.structure = {name: shape for part in gathered for name, shape in part[2].items()}


#: A synaptic layer's structure, what the energy models read beside its counts (`SynapticCounts`).
_STRUCTURE = ("weights", "biases", "fan_in", "kernel", "kernel_fanout", "inputs", "outputs", "dense_macs")


def _structure(counter: SynapticCounts) -> dict[str, int]:
    return {key: int(getattr(counter, key)) for key in _STRUCTURE}


def summarize_counts(recorder: Recorder, model: nn.Module, timesteps: int, delay: int, samples: int,
                     settings: EnergySettings, spiking: bool, accuracy: float | None) -> Profile:
    """The `Profile` of what a run counted: per layer in ``recorder.order``, its counts per sample
    and their energy (`energy.ComputeEnergy`), the totals (`energy.totals`), the standard errors over
    the samples and the energy estimates of ``settings.model`` (`verdict.estimate_energy`).

    Per synaptic layer ``ops = sum_t ops_t / samples`` (ACs, MACs and their effective and dense
    counts); per neuron layer ``spikes = sum_t spikes_t / samples``, ``updates = neurons * steps``
    and ``firing_rate = spikes / updates``, with ``steps = timesteps + delay``.

    Args:
        recorder: the counts: a `Recorder`, or anything with its ``synops``, ``activity``, ``order``,
            ``types`` and ``counters`` (`deployed_counts.DeployedCounts`), summed over the samples.
        model: names the profile (its ``zoo_name``, else its class name).
        timesteps: T, the input's steps.
        delay: the steps the network runs after them (a Loihi-timed model's, a deployed graph's
            depth), counted as run.
        samples: the samples counted.
        settings: prices the counts.
        spiking: an SNN (a spike costs ACs) or an ANN.
        accuracy: the measured accuracy, or None.
    """
    target, steps = settings.target, timesteps + delay
    energy = ComputeEnergy(target, spiking)
    synops, activity = recorder.synops.compute(), recorder.activity.compute()
    per_sample = {**recorder.synops.compute_samples(), **recorder.activity.compute_samples()}
    structure = getattr(recorder, "structure", None) or {n: _structure(c) for n, c in recorder.counters.items()}
    layers: list[LayerProfile] = []
    for name in sorted(recorder.order, key=recorder.order.get):
        module = recorder.types[name]
        if name in synops:
            s = {k: [v / samples for v in values] for k, values in synops[name].items()}
            layer: LayerProfile = SynapseProfile(
                name, module, acs=sum(s["acs"]), macs=sum(s["macs"]), acs_per_step=s["acs"], macs_per_step=s["macs"],
                effective_acs=sum(s["effective_acs"]), effective_macs=sum(s["effective_macs"]), dense=sum(s["dense"]),
                input_events=sum(s["input_events"]), **structure.get(name, {}))
        elif name in activity:
            a = activity[name]
            per_step = [v / samples for v in a["spikes"]]
            neurons, spikes, active = a["neurons"], sum(per_step), sum(a["active"]) / samples
            updates = float(neurons * steps)
            sample_spikes = per_sample.get(name, {}).get("spikes")
            layer = NeuronProfile(
                name, module, neurons=neurons, state_size=a["state_size"], spikes=spikes,
                firing_rate=spikes / updates if updates else 0.0,
                rate_per_step=[v / neurons if neurons else 0.0 for v in per_step],
                neuron_updates=updates, active_updates=active,
                firing_rate_stderr=stderr(sample_spikes / updates) if updates and sample_spikes is not None else 0.0)
        else:
            continue
        layer.energy_pj = energy(layer)
        layers.append(layer)
    name = getattr(model, "zoo_name", None) or type(model).__name__
    sums = totals(layers, steps, spiking, target)
    all_spikes = [per_sample[l.name]["spikes"] for l in layers if isinstance(l, NeuronProfile) and l.name in per_sample]
    if all_spikes and sums.neuron_updates:
        sums = replace(sums, firing_rate_stderr=stderr(sum(all_spikes) / sums.neuron_updates))
    estimates, break_even, sources = estimate_energy(
        layers, steps, timesteps, spiking, settings.model, target=target, precision=settings.precision,
        chip=settings.chip, samples=per_sample, firing_rate=sums.firing_rate)
    return Profile(str(name), spiking, steps, samples, target.to_dict(), layers, sums, accuracy=accuracy,
                   energy_model=settings.model, estimates=estimates, break_even=break_even, energy_sources=sources,
                   delay_steps=delay)


def profile_to_reports(source, out: str | Path, target: str | None = None, samples: int | None = 1000,
                       target_file=None, data_dir=None, force: bool = False, energy_model: str = "ops",
                       precision: str = "int8", chip: str | None = None, chip_file=None) -> tuple[dict, Path]:
    """Profile a checkpoint and write its reports (a recipe's profile step); returns a summary: the
    network's energy figure under its JSON name (`energy_report.figure_key`), firing rate, accuracy."""
    from snnpipe.pipeline.energy_report import figure_key
    from snnpipe.pipeline.report import write_reports

    result = profile_checkpoint(source, data_dir, target=target, target_file=target_file, samples=samples,
                                energy_model=energy_model, precision=precision, chip=chip, chip_file=chip_file,
                                progress=True)
    folder = write_reports(result, Path(out), force=force)
    own = result.estimates.get("snn") or result.estimates.get("ann")
    summary = {**({figure_key(own): own.total_uj} if own else {}), "firing_rate": result.totals.firing_rate,
               "accuracy": result.accuracy}
    return summary, folder
