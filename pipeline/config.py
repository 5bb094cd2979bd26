"""The training configuration: one dataclass that the CLI and recipes fill in, checked up front."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import yaml

from snnpipe.errors import SnnpipeError
from snnpipe.models.params import NeuronParams
from snnpipe.yaml_text import MAX_TEXT, load_yaml

OPTIMIZERS = ("adam", "sgd")
#: ``1/T``: the loss's gradient is divided by T in the one-step stages (its value is unchanged), as
#: the official RateBP code does (``CustomEvaluator`` in its ``model/layer.py``): with SGD it keeps
#: the official learning rates meaningful.
GRAD_SCALES = ("1", "1/T")
DEFAULT_LR = {"adam": 1e-3, "sgd": 0.1}
#: ``cosine``: annealed to 0 over ``epochs``, per step; ``plateau``: divided by 10 on each plateau of the
#: training accuracy, twice, the third ending the run (`train.Plateau`; ``epochs`` then only caps it).
SCHEDULES = ("cosine", "plateau")
#: Seeds numpy's ``RandomState`` and torch's generators both take: 0 to 2^32 - 1.
MAX_SEED = 2**32 - 1


@dataclass
class TrainConfig:
    """What to train, on what, and how. ``None`` fields take the dataset's defaults (`resolved`)."""

    dataset: str = "digits"
    data_dir: str | None = None
    model: str | None = None
    model_args: dict[str, Any] = field(default_factory=dict)
    stage: str = "bptt"
    stage_args: dict[str, Any] = field(default_factory=dict)
    teacher: str | None = None
    epochs: int | None = None
    batch_size: int | None = None
    optimizer: str = "adam"
    lr: float | None = None
    schedule: str = "cosine"
    patience: int = 4  # schedule plateau: epochs in a row with no training accuracy above the best so far
    momentum: float = 0.9
    weight_decay: float = 0.0
    grad_scale: str = "1"
    augment: bool = False
    train_samples: int | None = None
    test_samples: int | None = None
    val_samples: int | None = None  # carved from the training split, before train_samples (`data.validation_split`)
    test_each_epoch: bool = True  # False: the test set is read once, after the last epoch (`Trainer.fit`)
    timesteps: int = 4
    encoding: str = "direct"
    seed: int = 0
    device: str = "auto"
    out: str | None = None
    init: str | None = None
    resume: str | None = None
    checkpoint_every: int | None = None
    keep: int = 3
    amp: str | None = None
    compile: bool = False
    quantize: str | None = None
    neuron: NeuronParams = field(default_factory=NeuronParams)

    def __post_init__(self) -> None:
        if self.quantize == "loihi" and "delay_shift" not in self.model_args:
            # train in Loihi's timing too (one step of delay per layer), as the export will run
            self.model_args = {**self.model_args, "delay_shift": True}
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or not 0 <= self.seed <= MAX_SEED:
            # numpy's and torch's range, and the data split's (`pipeline.data.SPLIT_SEEDS`)
            raise SnnpipeError(f"seed={self.seed!r} is not an integer from 0 to {MAX_SEED} (2^32 - 1): give one in that range")
        if self.timesteps < 1:
            raise SnnpipeError(f"timesteps={self.timesteps} is out of range: T must be at least 1")
        if self.epochs is not None and self.epochs < 1:
            raise SnnpipeError(f"epochs={self.epochs} is out of range: at least 1")
        if self.batch_size is not None and self.batch_size < 1:
            raise SnnpipeError(f"batch_size={self.batch_size} is out of range: at least 1")
        if self.lr is not None and not self.lr > 0:
            raise SnnpipeError(f"lr={self.lr} is out of range: it must be > 0")
        if self.checkpoint_every is not None and self.checkpoint_every < 1:
            raise SnnpipeError(f"checkpoint_every={self.checkpoint_every} is out of range: at least 1 step")
        if self.keep < 1:
            raise SnnpipeError(f"keep={self.keep} is out of range: keep at least 1 checkpoint")
        if self.amp not in (None, "bf16"):
            raise SnnpipeError(f"amp={self.amp!r} is not supported: use bf16 or leave it out")
        if self.grad_scale not in GRAD_SCALES:
            raise SnnpipeError(f"grad_scale={self.grad_scale!r} is not one of {', '.join(GRAD_SCALES)}")
        if self.schedule not in SCHEDULES:
            raise SnnpipeError(f"schedule={self.schedule!r} is not one of {', '.join(SCHEDULES)}")
        if isinstance(self.patience, bool) or not isinstance(self.patience, int) or self.patience < 1:
            raise SnnpipeError(f"patience={self.patience!r} is out of range: a whole number of epochs, at least 1")
        if not 0 <= self.momentum < 1:
            raise SnnpipeError(f"momentum={self.momentum} is out of range: it lies in [0, 1)")
        if not self.weight_decay >= 0:
            raise SnnpipeError(f"weight_decay={self.weight_decay} is out of range: it must be >= 0")
        for name in ("train_samples", "test_samples", "val_samples"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise SnnpipeError(f"{name}={value} is out of range: at least 1 (or leave it out: all)")
        if not isinstance(self.test_each_epoch, bool):
            raise SnnpipeError(f"test_each_epoch={self.test_each_epoch!r} is not true or false")
        if self.optimizer not in OPTIMIZERS:
            raise SnnpipeError(
                f"unknown optimizer {self.optimizer!r}: choose one of {', '.join(OPTIMIZERS)}"
            )

    def resolved(self, defaults: Any = None) -> "TrainConfig":
        """A copy with every ``None`` default filled in from the dataset's registry entry (or
        ``defaults``, anything with its ``model``, ``epochs`` and ``batch_size``: the catalog's)."""
        if defaults is None:
            from snnpipe.pipeline.data import dataset_entry  # torch: callers before it pass the catalog's

            defaults = dataset_entry(self.dataset)
        return replace(
            self,
            model=self.model or defaults.model,
            epochs=self.epochs or defaults.epochs,
            batch_size=self.batch_size or defaults.batch_size,
            lr=self.lr or DEFAULT_LR[self.optimizer],
        )

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["neuron"] = self.neuron.to_dict()
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise SnnpipeError(f"unknown training option(s): {', '.join(sorted(unknown))}")
        data = dict(data)
        if isinstance(data.get("neuron"), dict):
            data["neuron"] = NeuronParams.from_dict(data["neuron"])
        return cls(**data)


def read_yaml(path: Path, what: str, error: type[SnnpipeError] = SnnpipeError) -> Any:
    """The YAML document in ``path``; an unreadable file, bad YAML, a file over `yaml_text.MAX_TEXT`
    or a document that expands past `yaml_text.MAX_EXPANDED` raises ``error`` in one line."""
    try:
        with open(path) as file:  # no more than load_yaml takes, whatever the file holds
            text = file.read(MAX_TEXT + 1)
        return load_yaml(text, f"{what} {path}", error)
    except OSError as err:
        raise error(f"cannot read {what} {path}: {err.strerror}") from None
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise error(f"{what} {path} is not valid YAML{where}; fix the file") from None
