"""Checkpoints: everything export and profile need, and what ``--resume`` needs to go on.

A checkpoint is one ``torch.save`` file of plain types and tensors only, so it loads with
``torch.load(weights_only=True)`` and can carry no code. Its schema::

    schema        "snnpipe.checkpoint/1"
    model         {"name": str, "args": dict}           # create_model(name, **args)
    spiking       bool                                   # False: the ANN twin
    neuron        NeuronParams.to_dict()
    timesteps     int
    encoding      "direct" | "rate" | "latency"
    data          DataSpec.to_dict()                     # shape, classes, normalization, split seed
    state_dict    {name: tensor}
    history       [{"stage", "epochs", "test_acc", "firing_rate", ...}, ...]
    training      None, or {"config", "epoch", "optimizer", "scheduler", "rng"} to resume

Writes are atomic: a temporary file in the same folder, fsync, then rename, so an interrupted
write never leaves a partial checkpoint in place of a good one.
"""

from __future__ import annotations

import errno
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from snnpipe.errors import SnnpipeError
from snnpipe.files import atomic_path, disk_error
from snnpipe.pipeline.checkpoint_file import CheckpointError, check_checkpoint_file
from snnpipe.models import NeuronParams, SpikingModel, create_model
from snnpipe.pipeline.data import DataSpec

SCHEMA = "snnpipe.checkpoint/1"



@dataclass
class Checkpoint:
    """A trained model and everything needed to rebuild, export or profile it."""

    model_name: str
    model_args: dict[str, Any]
    spiking: bool
    neuron: NeuronParams
    timesteps: int
    encoding: str
    data: DataSpec
    state_dict: dict[str, torch.Tensor]
    history: list[dict[str, Any]] = field(default_factory=list)
    training: dict[str, Any] | None = None
    path: Path | None = field(default=None, compare=False)  # where it was read or written

    def __post_init__(self) -> None:
        if self.timesteps < 1:
            raise CheckpointError(f"timesteps={self.timesteps} is out of range: at least 1")

    def build_model(self, spiking: bool | None = None) -> SpikingModel:
        """The model with these weights; ``spiking=False`` gives the ANN twin."""
        model = create_model(
            self.model_name,
            input_shape=self.data.input_shape,
            num_classes=self.data.num_classes,
            neuron=self.neuron,
            spiking=self.spiking if spiking is None else spiking,
            **self.model_args,
        )
        try:
            model.load_state_dict(self.state_dict)
        except RuntimeError as err:
            first = str(err).strip().splitlines()[0]
            raise CheckpointError(
                f"the weights do not fit model {self.model_name!r} ({first}); "
                "the checkpoint is damaged or was written for another model"
            ) from None
        return model

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "model": {"name": self.model_name, "args": self.model_args},
            "spiking": self.spiking,
            "neuron": self.neuron.to_dict(),
            "timesteps": self.timesteps,
            "encoding": self.encoding,
            "data": self.data.to_dict(),
            "state_dict": self.state_dict,
            "history": self.history,
            "training": self.training,
        }

    @classmethod
    def from_dict(cls, raw: Any, source: str = "checkpoint") -> "Checkpoint":
        if not isinstance(raw, dict) or "schema" not in raw:
            raise CheckpointError(f"{source} is not an snnpipe checkpoint (no schema field)")
        if raw["schema"] != SCHEMA:
            raise CheckpointError(
                f"{source} has schema {raw['schema']!r}; this snnpipe reads {SCHEMA!r}"
            )
        try:
            ckpt = cls(
                model_name=raw["model"]["name"],
                model_args=dict(raw["model"]["args"]),
                spiking=bool(raw["spiking"]),
                neuron=NeuronParams.from_dict(raw["neuron"]),
                timesteps=int(raw["timesteps"]),
                encoding=str(raw["encoding"]),
                data=DataSpec.from_dict({"split_seed": _training_seed(raw), **raw["data"]}),
                state_dict=dict(raw["state_dict"]),
                history=list(raw["history"]),
                training=raw.get("training"),
            )
        except (KeyError, TypeError, ValueError) as err:
            if isinstance(err, SnnpipeError):
                raise CheckpointError(f"{source}: {err}") from None
            raise CheckpointError(f"{source} is missing or has a malformed field ({err})") from None
        check_finite(ckpt.state_dict, source)
        return ckpt

    def save(self, path: str | Path) -> Path:
        """Write atomically (temporary file, fsync, rename) and return the path."""
        self.path = atomic_save(self.to_dict(), Path(path))
        return self.path

    @classmethod
    def load(cls, path: str | Path) -> "Checkpoint":
        path = check_checkpoint_file(path)
        try:
            raw = torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as err:
            if "weights_only" in str(err) or "Unsupported global" in str(err):
                raise CheckpointError(
                    f"{path} carries pickled code, which snnpipe refuses to load; "
                    "re-create it with snnpipe"
                ) from None
            raise CheckpointError(_damaged(path)) from None
        except Exception:  # arbitrary bytes make the unpickler raise almost anything
            raise CheckpointError(_damaged(path)) from None
        ckpt = cls.from_dict(raw, source=str(path))
        ckpt.path = path
        return ckpt


def _training_seed(raw: dict[str, Any]) -> Any:
    """The seed a checkpoint's run was trained with, 0 if none: its data's split seed where the
    checkpoint is older than `DataSpec.split_seed` (training splits the data with its seed)."""
    training = raw.get("training")
    config = training.get("config") if isinstance(training, dict) else None
    return config.get("seed", 0) if isinstance(config, dict) else 0


#: The first bytes of what torch.save writes: a zip archive (torch >= 1.6), or a bare pickle.

def check_finite(tensors: dict[str, Any], source: str) -> None:
    """Refuse weights holding NaN or infinity, naming the first such tensor: they would train on
    as NaN, profile and export as garbage, or fail deep inside the quantizer. Refuse complex
    tensors too: loading one into the model's real parameters drops its imaginary part."""
    for name, value in tensors.items():
        if not isinstance(value, torch.Tensor):
            raise CheckpointError(f"{source}: {name} is not a tensor; re-create the checkpoint")
        if value.is_complex():
            raise CheckpointError(f"{source}: tensor {name} is complex ({value.dtype}); snnpipe's weights are real: "
                                  "re-create the checkpoint")
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            bad = int((~torch.isfinite(value)).sum())
            raise CheckpointError(
                f"{source}: tensor {name} holds {bad} NaN or infinite value{'s' if bad > 1 else ''} of "
                f"{value.numel()}; the run diverged: use an earlier step-N.pt of it, or train again with a lower --lr"
            )


def _damaged(path: Path) -> str:
    return f"{path} is truncated or damaged and cannot be read; use an earlier step-N.pt of its run, or train it again"


def atomic_save(obj: Any, path: Path) -> Path:
    """``torch.save`` to a temporary file beside ``path``, fsync it, then rename over ``path``.

    Raises:
        OSError: the write failed; torch reports a full disk as a RuntimeError, which becomes
            OSError(ENOSPC) here, so that every caller handles one error type.
    """
    try:
        with atomic_path(path) as tmp:
            torch.save(obj, tmp)
    except RuntimeError as err:
        raise OSError(errno.EIO, disk_error(err, path), str(path)) from None
    return path
