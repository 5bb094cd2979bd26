"""The deployed network, profiled: ``snnpipe profile FILE.net.h5`` reads the file (a netx file,
snnpipe's or one lava-dl's ``export_hdf5`` wrote, or snnpipe's Loihi graph file:
`graph_file.read_loihi`), plans its data (`deployed_data`: the file's own dataset, encoding and T,
or a checkpoint's encoded test set), and counts its fixed-point spikes and synaptic operations in the
bit-accurate simulator (`deployed_counts`), as `stage` counts a float model.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from snnpipe.hw_targets.chip import Chip
from snnpipe.hw_targets.energy import EnergyTarget
from snnpipe.hw_targets.precision import Precision
from snnpipe.pipeline.checkpoint import Checkpoint
from snnpipe.pipeline.data import TEST_BATCH_SIZE
from snnpipe.pipeline.memory import ModelSize, check_fits, inference_bytes
from snnpipe.pipeline.profile.deployed_counts import count_deployed
from snnpipe.pipeline.profile.deployed_data import DataPlan, attr_text, check_input, data_plan, fit_input, read_deployed
from snnpipe.pipeline.profile.schema import Profile, ProfileError


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
    energy_model: str = "ops",
    precision: str | Precision = "int8",
    chip: str | Chip | None = None,
    chip_file: str | Path | None = None,
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
        energy_model, precision, chip, chip_file: the energy estimates, as for `stage.profile_module`;
            ``int8``, the default, is the file's precision (Loihi's 8-bit weights).

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
            written = attr_text(attrs.get(key))
            if None not in (written, own) and written != own:
                raise ProfileError(f"{path} was exported for {written} {key}; the checkpoint's is {own}: profile it "
                                   "beside the checkpoint it was exported from")
        plan = DataPlan(ckpt.data.name, ckpt.encoding, timesteps or ckpt.timesteps, ckpt.data.mean, ckpt.data.std,
                        ckpt.data.split_seed)
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
    size = ModelSize(sum(c.weight.size for node in graph.nodes for c in node.connections),
                     sum(node.neurons for node in graph.nodes), graph.steps_for(0))
    check_fits(inference_bytes(size, graph.input_shape, plan.timesteps, batch_size),  # before the simulator runs
               f"profiling {path.name} at T={plan.timesteps} in batches of {batch_size}",
               "profile it for fewer timesteps (-T N)")
    result = count_deployed(graph, fit_input(batches, shape, graph, path)(), plan.timesteps, target, target_file=target_file,
                            name=f"{_model_name(path)} (Loihi fixed point)", num_classes=num_classes, progress=progress,
                            energy_model=energy_model, precision=precision, chip=chip, chip_file=chip_file)
    result.dataset, result.encoding = plan.dataset, plan.encoding
    if samples is not None and result.samples < samples:
        result.samples_requested = samples  # the test set holds fewer: said in the report and on the terminal
    return result
