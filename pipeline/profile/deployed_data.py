"""The data a deployed file runs on: the file read, its dataset, encoding and T planned, and the
batches checked against its input layer.

The file's root attributes name the dataset, its split seed and normalization, T and the encoding
(snnpipe's export writes them; `pipeline.export.data_metadata`); options fill in or override them,
and a file without them (lava-dl's) needs ``dataset``, ``encoding`` and ``timesteps`` named. A netx
input layer takes spikes (``rate``, ``latency``); a graph file with graded input takes the
``direct`` (analog) input. A 1-d input layer takes the images flattened in (C, H, W) order.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from snnpipe.hw_targets.loihi.graph import LoihiGraph
from snnpipe.pipeline.encoding import check_normalization
from snnpipe.pipeline.profile.schema import ProfileError

#: The encodings whose input is spikes: what a netx input layer (unary events) takes.
SPIKE_ENCODINGS = ("rate", "latency")


@dataclass(frozen=True)
class DataPlan:
    """What the deployed file is run on: a dataset's test set, encoded."""

    dataset: str
    encoding: str
    timesteps: int
    mean: tuple[float, ...] | None
    std: tuple[float, ...] | None
    split_seed: int

    def __post_init__(self) -> None:
        for name, low, high in (("timesteps", 1, None), ("split_seed", 0, 2**32 - 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low or (
                    high is not None and value > high):
                raise ValueError(f"{name}={value!r} must be an integer in [{low}, {high or 'inf'}]")
        check_normalization(self.mean or (), self.std or ())


def attr_text(value: Any) -> str | None:
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
    own = attr_text(attrs.get("dataset"))
    normalization = dataset is None or dataset == own  # the file's mean and std are its own dataset's
    dataset = dataset or own
    encoding = encoding or attr_text(attrs.get("encoding"))
    if timesteps is not None and timesteps < 1:
        raise ProfileError(f"--timesteps {timesteps} is out of range: at least 1")
    timesteps = timesteps or attrs.get("timesteps")
    missing = [option for option, value in (("--dataset", dataset), ("--encoding", encoding), ("--timesteps", timesteps))
               if value is None]
    if missing:
        raise ProfileError(f"{path} does not say what data it runs on (a file lava-dl or an older snnpipe wrote): "
                           f"name it with {', '.join(missing)} (e.g. --dataset digits --encoding rate --timesteps 8)")
    mean, std = (_attr_list(attrs.get("mean")), _attr_list(attrs.get("std"))) if normalization else (None, None)
    try:
        return DataPlan(dataset, encoding, timesteps, mean, std, attrs.get("data_seed", 0))
    except ValueError as err:  # the file's own attributes (the options are checked where parsed)
        raise ProfileError(f"{path}: its root attribute {str(err).replace('split_seed', 'data_seed')}; "
                           "re-export the file") from None


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


def fit_input(batches: Callable[[], Iterable], shape: tuple[int, ...], graph: LoihiGraph,
              path: Path) -> Callable[[], Iterable]:
    """The batches shaped as the file's input: as they are, or flattened for a 1-d input layer.

    Args:
        batches: makes the (x, y) batches, x of shape (T, B, *shape).
        shape: the dataset's image shape.
        graph, path: the deployed network and its file (for the error).

    Raises:
        ProfileError: one line, where the images do not fit the input layer.
    """
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
