"""``import_nir(path) -> Checkpoint``: a network made by another NIR tool, as an snnpipe checkpoint.

The file is read into snnpipe's typed graph (`snnpipe.models.ir`), which becomes a ``sequential``
model where it is one chain and a ``graph`` model otherwise (residual networks); see
`snnpipe.models.graph` and, for the node, neuron and time-constant mapping, `snnpipe.hw_targets.nir`.
`nir_checkpoint` gives the checkpoint without writing it: ``snnpipe profile FILE.nir`` runs that. What a NIR file does not carry is given here, with these defaults:

- ``timesteps``, ``encoding``, the dataset and its normalization (``mean``, ``std``): the option
  where given, else the graph's metadata where an snnpipe export wrote them there (the mean and std
  only where the dataset is the file's own, and with them the seed of its split, ``data_seed``: the
  test images of the run that trained it), else:
- ``timesteps``: 4 (the default of ``snnpipe train``); ``encoding``: ``direct``.
- the dataset: the built-in dataset whose image shape and class count fit the graph (the dataset
  registry's shapes, in its order; for 1x28x28 with 10 classes, fashion-mnist, SPEC §6's benchmark here).
- the image shape: the graph's input where it is (C, H, W); where the input is flat (N,), as from
  an snnTorch MLP, ``--input-shape``, else the dataset's image shape (a Flatten goes first).
- normalization: mean 0, std 1 per channel: the network sees the images as they are.
- ``dt``: the file's metadata, else snnTorch's 1e-4 s.

The checkpoint's history records where each setting came from (``settings_from``: option, file,
default or guessed), and the CLI says it. A graph with a one-step Delay in front of every synapse
(Loihi's timing, as `snnpipe.hw_targets.nir` writes a model trained with ``--quantize loihi``)
imports with ``delay_shift``.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from snnpipe.errors import SnnpipeError
from snnpipe.files import disk_error
from snnpipe.pipeline.checkpoint import Checkpoint
from snnpipe.pipeline.data import DATASETS, SPLIT_SEEDS, DataSpec

#: What a file that does not say (and no option) gives: SPEC's defaults of ``snnpipe train``.
DEFAULTS: dict[str, Any] = {"timesteps": 4, "encoding": "direct"}


class ImportOptionError(SnnpipeError):
    """Options an import cannot work with: one line naming the option."""


def _guess_dataset(shape: tuple[int, ...] | None, features: int | None, classes: int) -> str:
    for name, entry in DATASETS.items():
        image = entry.input_shape
        if entry.num_classes == classes and (image == shape or (shape is None and math.prod(image) == features)):
            return name
    what = "x".join(map(str, shape)) if shape else f"{features} flat values"
    raise ImportOptionError(f"no built-in dataset has {what} input and {classes} classes; give --dataset NAME (and --input-shape)")


def import_nir(path: str | Path, out: str | Path | None = None, *, force: bool = False, **settings: Any) -> Checkpoint:
    """Read a NIR file, turn it into an snnpipe model and write its checkpoint.

    Args:
        path: the NIR file (HDF5, as ``nir.write`` writes it).
        out: the checkpoint to write; default the file's name with ``.pt``.
        force: overwrite an existing checkpoint.
        settings: as `nir_checkpoint`.

    Raises:
        SnnpipeError: as `nir_checkpoint`; a checkpoint there without ``force``, or one that would
            replace the NIR file.
    """
    path = Path(path)
    target = Path(out) if out is not None else path.with_suffix(".pt")
    if target.resolve() == path.resolve():
        raise ImportOptionError(f"the checkpoint would overwrite the NIR file {path}; give another --out")
    ckpt = nir_checkpoint(path, **settings, _before_build=lambda: _check_free(target, force))
    try:
        ckpt.save(target)
    except OSError as err:
        raise SnnpipeError(f"cannot write {target} ({disk_error(err, target)}); nothing was written there") from None
    return ckpt


def _check_free(target: Path, force: bool) -> None:
    if target.is_dir():
        raise ImportOptionError(f"{target} is a folder; give --out the checkpoint's file, e.g. {target / 'model.pt'}")
    if os.path.lexists(target) and not force:
        raise ImportOptionError(f"{target} exists; pass --force to overwrite it or --out to write elsewhere")


def nir_checkpoint(
    path: str | Path,
    *,
    timesteps: int | None = None,
    encoding: str | None = None,
    dataset: str | None = None,
    input_shape: Sequence[int] | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    dt: float | None = None,
    refractory_steps: int = 0,
    _before_build: Callable[[], None] | None = None,
) -> Checkpoint:
    """A NIR file as a checkpoint in memory (`import_nir` writes it; ``snnpipe profile FILE.nir``
    runs it as it is).

    Args:
        path: the NIR file (HDF5, as ``nir.write`` writes it).
        timesteps: T the network runs for.
        encoding: ``direct``, ``rate`` or ``latency``.
        dataset: the dataset profile and export use (a registered name); guessed when None.
        input_shape: (C, H, W) for a graph with flat input.
        mean, std: per-channel normalization of the direct encoding (default 0 and 1).
        dt: seconds per step the time constants were written with (default: the file's, else 1e-4).
        refractory_steps: for every CubaLIF; 1 reproduces snnTorch's default ``Synaptic``.

    Raises:
        SnnpipeError: a missing, damaged or unknown-version file (one that crashes or hangs the HDF5
            library included: `snnpipe.hw_targets.nir.read_nir`), values that make no network (not
            finite, shapes that do not fit), an unsupported node, bad options, a T (given or the
            file's) at which one sample would not fit in memory (`memory.TooLargeError`).
    """
    from snnpipe.hw_targets import nir as nir_target
    from snnpipe.pipeline.encoding import ENCODINGS

    path = Path(path)
    if refractory_steps < 0:
        raise ImportOptionError(f"--refractory-steps {refractory_steps} is out of range: at least 0")
    given = {"dataset": dataset, "timesteps": timesteps, "encoding": encoding, "mean": mean, "std": std}
    _check(given, "--", ENCODINGS)
    graph, version = nir_target.read_nir(path)  # the input first: a missing file is named as such
    if _before_build is not None:
        _before_build()
    own = _own_settings(graph, path, ENCODINGS)
    if dataset is not None and own.get("dataset", dataset) != dataset:  # the file's mean and std are its dataset's
        own.pop("mean", None), own.pop("std", None), own.pop("data_seed", None)
    settings = {key: value if value is not None else own.get(key, DEFAULTS.get(key)) for key, value in given.items()}
    origin = {key: "option" if given[key] is not None else "file" if key in own else "default" for key in given}
    dataset, timesteps, encoding, mean, std = (settings[key] for key in given)
    shape = tuple(int(v) for v in input_shape) if input_shape is not None else None
    if shape is None:
        shape = _image_shape_for_flat_input(graph, dataset, nir_target)
    network = nir_target.from_nir(graph, dt=dt, input_shape=shape, refractory_steps=refractory_steps)
    name = dataset or _guess_dataset(network.input_shape, None, network.num_classes)
    origin["dataset"] = "guessed" if dataset is None else origin["dataset"]
    if DATASETS[name].input_shape != network.input_shape:
        image = "x".join(map(str, DATASETS[name].input_shape))
        raise ImportOptionError(f"{name} images are {image}; the network takes {'x'.join(map(str, network.input_shape))}")
    channels = network.input_shape[0]
    try:
        spec = DataSpec(name, network.input_shape, network.num_classes,
                        tuple(mean) if mean is not None else (0.0,) * channels,
                        tuple(std) if std is not None else (1.0,) * channels, own.get("data_seed", 0))
    except ValueError as err:  # DataSpec names the field (mean, std) that does not fit
        where = " and ".join(f"--{key}" if origin[key] == "option" else f"{path}'s metadata {key}"
                             for key in ("mean", "std") if origin[key] != "default")
        raise ImportOptionError(f"{where}: {err}") from None
    model = network.build()
    ckpt = Checkpoint(
        model_name=network.model_name, model_args=network.model_args, spiking=True, neuron=network.neuron,
        timesteps=timesteps, encoding=encoding, data=spec,
        state_dict={k: v.detach().clone() for k, v in model.state_dict().items()},
        history=[{"stage": "import", "format": "nir", "source": str(path), "nir_version": version, "dt": network.dt,
                  "settings_from": origin}],
    )
    _check_fits(ckpt, f"--timesteps {timesteps}" if origin["timesteps"] == "option" else
                f"{path}: its metadata timesteps {timesteps}" if origin["timesteps"] == "file" else f"T={timesteps}")
    return ckpt


def load_network(path: str | Path) -> Checkpoint:
    """The checkpoint in ``path``, or the NIR graph in ``path`` as `nir_checkpoint` reads it (the
    file's settings, else the defaults): what ``snnpipe export FILE.nir`` and ``snnpipe train
    --init FILE.nir`` take in place of a checkpoint."""
    from snnpipe.pipeline.checkpoint_file import is_nir_file

    return nir_checkpoint(path) if is_nir_file(path) else Checkpoint.load(path)


def _check_fits(ckpt: Checkpoint, where: str) -> None:
    """Refuse a T at which one sample cannot run here: what profile and export would refuse
    (`memory.check_inference`), said before a checkpoint nothing can run is written."""
    from snnpipe.pipeline.memory import check_fits, inference_bytes, model_size

    shape = tuple(ckpt.data.input_shape)
    size = model_size(ckpt.model_name, ckpt.model_args, shape, ckpt.data.num_classes, ckpt.neuron)
    check_fits(inference_bytes(size, shape, ckpt.timesteps, 1), f"{where}: one sample at that T",
               "import it with a smaller -T N (--timesteps)")


def _check(settings: dict[str, Any], prefix: str, encodings) -> None:
    """Refuse a dataset, T or encoding out of range, naming it as ``prefix`` + its name."""
    timesteps, encoding, dataset = settings.get("timesteps"), settings.get("encoding"), settings.get("dataset")
    if timesteps is not None and timesteps < 1:
        raise ImportOptionError(f"{prefix}timesteps {timesteps} is out of range: at least 1")
    if settings.get("data_seed", 0) not in SPLIT_SEEDS:
        raise ImportOptionError(f"{prefix}data_seed {settings['data_seed']} is out of range: 0 to 2**32 - 1")
    if encoding is not None and encoding not in encodings:
        raise ImportOptionError(f"{prefix}encoding {encoding!r} is unknown: choose one of {', '.join(encodings)}")
    if dataset is not None and dataset not in DATASETS:
        raise ImportOptionError(f"{prefix}dataset {dataset!r} is unknown: choose one of {', '.join(DATASETS)}")


def _own_settings(graph, path: Path, encodings) -> dict[str, Any]:
    """The dataset and its split seed, T, encoding, mean and std an snnpipe export wrote into the
    graph's metadata (`snnpipe.hw_targets.nir.export_nir`); those it does not hold are left out.

    Raises:
        ImportOptionError: a value of the wrong type or out of range, named.
    """
    metadata = graph.metadata if isinstance(graph.metadata, dict) else {}
    own: dict[str, Any] = {}
    for key, kind in (("dataset", str), ("data_seed", int), ("encoding", str), ("timesteps", int), ("mean", tuple),
                      ("std", tuple)):
        if key not in metadata:
            continue
        value = np.asarray(metadata[key])
        ok = {str: value.dtype.kind in "SU" and value.ndim == 0,
              int: value.dtype.kind in "iu" and value.ndim == 0,
              tuple: value.dtype.kind in "fiu" and value.ndim == 1}[kind]
        if not ok:
            remedy = "re-export the file" if key == "data_seed" else f"give --{key} (or re-export the file)"
            raise ImportOptionError(f"{path}: its metadata {key} is {value.dtype} of shape {value.shape}, not a "
                                    f"{kind.__name__}; {remedy}")
        own[key] = value.item().decode("utf-8", "replace") if value.dtype.kind == "S" else kind(value.tolist())
    _check(own, f"{path}: its metadata ", encodings)
    return own


def _image_shape_for_flat_input(graph, dataset: str | None, nir_target) -> tuple[int, int, int] | None:
    """For a graph whose input is flat (N,): the image shape of ``dataset``, or of the built-in
    dataset with N values per image and the graph's class count. None for image input."""
    flat, classes = nir_target.io_shapes(graph)
    if flat is None or len(flat) != 1:
        return None  # image input, or a graph from_nir will refuse by name
    if dataset is not None:
        return DATASETS[dataset].input_shape
    count = classes[0] if classes and len(classes) == 1 else -1
    return DATASETS[_guess_dataset(None, flat[0], count)].input_shape
