"""``train(config) -> Checkpoint``: the one trainer behind every stage.

Per epoch: a `DistributedSampler` (seeded by seed and epoch; one replica when not distributed)
orders the data, each batch is encoded, ``stage.training_step`` gives the loss, the optimizer
steps and the cosine schedule advances per step (or, ``schedule: plateau``, the lr holds and `Plateau`
reads the epoch's training accuracy); then the test split is evaluated, a line is appended to
``metrics.jsonl`` and the checkpoint is written.

Never losing work:
- checkpoints are written atomically (temporary file, fsync, rename) at the end of every epoch
  and, with ``checkpoint_every=N``, every N steps; each is also kept as ``step-<global step>.pt``,
  the last ``keep`` of them;
- SIGTERM or SIGINT finishes the current step, writes a checkpoint and raises
  `TrainingInterrupted`;
- ``--resume`` restores weights, optimizer, schedule, the position inside the epoch and the state
  of the rate-coding generator, so on the CPU a resumed run ends bit-identical to an uninterrupted
  one; resumed with another ``--epochs``, the cosine schedule is re-planned for the new length (and
  the terminal says so); resumed to no more epochs than it has run, nothing is trained or written
  (as Lightning's ``fit`` stops at once when ``max_epochs`` is reached), and the terminal says that.

Several processes (``torchrun --nproc_per_node=N -m snnpipe train ...``) train with
DistributedDataParallel: ``batch_size`` is the global batch, split evenly over the ranks by the
sampler, gradients are averaged, and only rank 0 writes. BatchNorm statistics stay per rank (no
SyncBatchNorm), and the rate encoding draws per rank, so those two differ from a one-process run;
everything else is the same computation.

The run folder is ``config.out``, or ``runs/<dataset>-<model>-<stage>``; a folder that already
holds a run is never written into (the next free ``-2``, ``-3`` ... is used), except by
``--resume``, which continues the run it names.
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import signal
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from torch.utils.data import DistributedSampler

from snnpipe import progress as progress_bars
from snnpipe.errors import SnnpipeError, StopRequested, TrainingDiverged
from snnpipe.files import FolderLock, atomic_path, check_free_space, claim_free_folder, lock_folder, remove_if_unused
from snnpipe.models import SpikingModel, create_model, firing_rate, topology
from snnpipe.models.layers import activity, set_activity, to_device
from snnpipe.models.zoo import check_model_arguments, describe_model
from snnpipe.pipeline import distributed
from snnpipe.pipeline.checkpoint import Checkpoint, CheckpointError
from snnpipe.pipeline.checks import check_config
from snnpipe.pipeline.config import TrainConfig
from snnpipe.pipeline.data import (TEST_BATCH_SIZE, Dataset, DataSpec, dataset_entry, iterate_batches, load_dataset,
                                   subset, validation_split)
from snnpipe.pipeline.distributed import World
from snnpipe.pipeline.augment import augment
from snnpipe.pipeline.memory import (TRAINING_STEP_COST, ModelSize, check_fits, model_size, state_duration,
                                     training_bytes)
from snnpipe.pipeline.process import apply_thread_policy
from snnpipe.pipeline.encoding import encode
from snnpipe.pipeline.importer import load_network
from snnpipe.pipeline.runtime import resolve_device
from snnpipe.pipeline.stages import Stage, get_stage, stage_arguments

CHECKPOINT_NAME = "checkpoint.pt"
METRICS_NAME = "metrics.jsonl"


class TrainingInterrupted(StopRequested):
    """SIGTERM or SIGINT stopped training after a checkpoint was written."""

    def __init__(self, signum: int, path: Path) -> None:
        name = signal.Signals(signum).name
        super().__init__(f"stopped by {name}; saved {path}; continue with --resume {path}")
        self.signum, self.path = signum, path
        self.exit_code = 128 + signum


@dataclass
class Metrics:
    """Loss, accuracy (fraction) and mean firing rate over a pass through some data."""

    loss: float
    accuracy: float
    firing_rate: float


def prepare_input(
    images: torch.Tensor,
    spec: DataSpec,
    encoding: str,
    timesteps: int,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Encode a batch of [0, 1] images into (T, B, C, H, W) network input."""
    return encode(images, encoding, timesteps, spec.mean, spec.std, generator)


@torch.no_grad()
def evaluate(
    model: SpikingModel,
    images: torch.Tensor,
    labels: torch.Tensor,
    spec: DataSpec,
    encoding: str,
    timesteps: int,
    batch_size: int = TEST_BATCH_SIZE,
    device: torch.device | str = "cpu",
    seed: int = 0,
    world: World = World(),
) -> Metrics:
    """Test loss, accuracy and firing rate; the rate encoding draws from a generator seeded by seed.

    With several ranks each takes every ``world.size``-th sample and the sums are reduced.
    """
    model.eval()
    firing_rate(model)  # start the activity count afresh
    generator = torch.Generator().manual_seed(seed + world.rank)
    images, labels = images[world.rank::world.size], labels[world.rank::world.size]
    loss_sum, correct, activity, count = 0.0, 0, 0.0, 0
    for x, y in iterate_batches(images, labels, batch_size, shuffle=False):
        x = to_device(prepare_input(x, spec, encoding, timesteps, generator), device)
        y = y.to(device)
        logits = model(x).mean(0)
        loss_sum += float(F.cross_entropy(logits, y, reduction="sum"))
        correct += int((logits.argmax(1) == y).sum())
    for neuron in model.neurons():
        activity += float(neuron.activity_sum)
        count += neuron.activity_count
        neuron.reset_activity()
    loss_sum, correct, n, activity, count = distributed.all_reduce_sum(
        [loss_sum, correct, len(labels), activity, count], world
    )
    return Metrics(loss_sum / n, correct / n, activity / count if count else 0.0)


def _claim_run_folder(config: TrainConfig, resumed: Checkpoint | None) -> FolderLock:
    """The run's folder, locked by this process for the run's life, so that no other snnpipe
    command writes there meanwhile.

    - ``--resume X`` without ``--out``: X's folder, where X is that run's latest checkpoint (an
      older step file there would overwrite the later work: it needs ``--out``);
    - ``--out DIR``: DIR, unless it holds a run or another command is writing to it;
    - neither: the first free ``runs/<dataset>-<model>-<stage>[-N]``.
    """
    if resumed is not None and (not config.out or Path(config.out).resolve() == resumed.path.parent.resolve()):
        folder = resumed.path.parent
        latest = folder / CHECKPOINT_NAME
        if latest.exists() and not os.path.samefile(resumed.path, latest):
            raise SnnpipeError(
                f"{resumed.path} is not the latest checkpoint of its run ({latest} is later): resuming it there would "
                "overwrite that work; give --out NEW_FOLDER to continue it there"
            )
        return _lock(folder)
    if config.out:
        folder = Path(config.out)
        lock = _lock(folder)
        if (folder / CHECKPOINT_NAME).exists():
            lock.release()
            raise SnnpipeError(
                f"{folder} already holds a run; choose another --out, or continue it with "
                f"--resume {folder / CHECKPOINT_NAME}"
            )
        return lock
    try:
        return claim_free_folder(Path("runs") / f"{config.dataset}-{config.model}-{config.stage}")
    except OSError as err:
        raise SnnpipeError(f"cannot create a run folder in runs/ ({err.strerror}); choose a writable --out") from None


def _lock(folder: Path) -> FolderLock:
    try:
        lock = lock_folder(folder)
    except OSError as err:
        raise SnnpipeError(f"cannot write to the run folder {folder} ({err.strerror}); choose a writable --out") from None
    if lock is None:
        raise SnnpipeError(f"another snnpipe command is writing to {folder}; wait for it to finish, or choose another --out")
    return lock


def _check_writable(folder: Path) -> None:
    """Create the run folder and prove it takes a file, before any time is spent training."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as err:
        raise SnnpipeError(f"cannot write to the run folder {folder} ({err.strerror}); choose a writable --out") from None


def _check_memory(config: TrainConfig, stage_cls: type[Stage], dataset: Dataset | None) -> ModelSize:
    """Refuse a run that cannot fit before anything is allocated (`memory`); returns the model's size."""
    entry = dataset_entry(config.dataset)
    shape, classes = (dataset.spec.input_shape, dataset.spec.num_classes) if dataset else (entry.input_shape, entry.num_classes)
    size = model_size(config.model, config.model_args, shape, classes, config.neuron, stage_cls.spiking,
                      config.batch_size)
    over_time = stage_cls.graph_over_time(stage_arguments(config.stage, config.stage_args))
    needed = training_bytes(size, shape, config.timesteps, config.batch_size, over_time)
    hint = (f"lower -T ({config.timesteps}) or --batch-size ({config.batch_size}), or train with --stage ratebp, whose "
            "memory does not grow with T" if over_time else f"lower --batch-size ({config.batch_size}) or the model's size")
    check_fits(needed, f"training {config.model} ({size.parameters:,} parameters, {size.neurons:,} neurons)", hint,
               resolve_device(config.device))
    return size


def _state_duration(config: TrainConfig, size: ModelSize, train_samples: int, test_samples: int) -> None:
    """Say before the first step when the run will take more than an hour (`memory.state_duration`):
    per epoch, the training batches at `TRAINING_STEP_COST` forward steps each over T + L steps, and
    the test batches' T + L forward steps, from `ModelSize.step_seconds` (a step of one batch)."""
    steps = config.timesteps + size.delay_steps
    batches = math.ceil(train_samples / config.batch_size)
    tests = math.ceil(test_samples / config.batch_size)
    seconds = config.epochs * steps * size.step_seconds * (TRAINING_STEP_COST * batches + tests)
    span = (f"up to {config.epochs} epochs (fewer where its plateaus come first)" if config.schedule == "plateau"
            else f"{config.epochs} epochs")
    state_duration(seconds, f"training {config.model} for {span} at T={config.timesteps}",
                   f"lower -T ({config.timesteps}) or --epochs ({config.epochs}) to shorten it")


#: The options a resumed run takes anew: how long it runs and where it writes; every other one is the
#: saved run's (`_start`), and given with another value is refused (`check_resume_options`).
RESUME_OPTIONS = ("resume", "epochs", "out")


def _start(config: TrainConfig) -> tuple[TrainConfig, Checkpoint | None]:
    """The config to run and the checkpoint to resume from (if any)."""
    if config.resume is None:
        return config, None
    saved, ckpt = _saved_run(config.resume)
    return replace(saved, epochs=config.epochs or saved.epochs, resume=config.resume, out=config.out), ckpt


def _saved_run(path: str) -> tuple[TrainConfig, Checkpoint]:
    ckpt = Checkpoint.load(path)
    if not ckpt.training:
        raise CheckpointError(f"{path} holds no training state to resume (it was exported or imported)")
    return TrainConfig.from_dict(ckpt.training["config"]), ckpt


def check_resume_options(config: TrainConfig, given: dict[str, str]) -> None:
    """Refuse the options given with ``--resume`` that would change its run (``given``: a `TrainConfig`
    or `NeuronParams` field -> the flag that gave it): resumed, the run is the saved one but for
    `RESUME_OPTIONS`, so another value would be silently dropped.

    Raises:
        SnnpipeError: one line naming each such flag, the run's value, and ``--init`` for a new run.
    """
    saved, _ = _saved_run(config.resume)

    def flat(c: TrainConfig) -> dict[str, str]:
        values = c.to_dict()
        return {k: json.dumps(v, sort_keys=True, default=str) for k, v in {**values, **values.pop("neuron")}.items()}

    mine, run = flat(config), flat(saved)
    changed = [name for name in given if name not in RESUME_OPTIONS and name in mine and mine[name] != run[name]]
    if changed:
        raise SnnpipeError(f"--resume continues {config.resume} as it was set up, and {', '.join(given[n] for n in changed)} "
                           f"would change it (the run's: {', '.join(f'{n}={run[n]}' for n in changed)}); leave them out, "
                           f"or start a new run from its weights with --init {config.resume}")


def _adopt_init(config: TrainConfig) -> TrainConfig:
    """With ``--init`` and no ``--model``: the config trains the init's network, a zoo model's or an
    imported one (a NIR file's too, `importer.load_network`), with its arguments."""
    if config.init is None or config.model is not None or config.resume is not None:
        return config
    source = load_network(config.init)
    return replace(config, model=source.model_name, model_args={**source.model_args, **config.model_args})


def _coerced(ckpt: Checkpoint) -> dict:
    """The checkpoint's model arguments as `check_config` coerces a config's (YAML lists as tuples)."""
    try:
        return check_model_arguments(ckpt.model_name, ckpt.model_args)
    except SnnpipeError:
        return ckpt.model_args


def _initial_weights(model: SpikingModel, config: TrainConfig) -> list[dict]:
    """Load ``--init`` weights (stage chaining, e.g. ann -> bptt) and return their history."""
    if config.init is None:
        return []
    source = load_network(config.init)
    if source.model_name != config.model or topology(_coerced(source)) != topology(config.model_args):
        raise CheckpointError(
            f"--init {config.init} is {describe_model(source.model_name, source.model_args)}, this run trains "
            f"{describe_model(config.model, config.model_args)}; give the same --model and --model-arg, or another --init"
        )
    try:
        model.load_state_dict(source.state_dict)
    except RuntimeError:
        raise CheckpointError(f"--init {config.init}: its weights do not fit this model's input or classes") from None
    return list(source.history)


class _StepModule(torch.nn.Module):
    """The stage's training step as a module, so that DistributedDataParallel can wrap it."""

    def __init__(self, stage: Stage, grad_scale: float = 1.0) -> None:
        super().__init__()
        self.stage = stage
        self.grad_scale = grad_scale

    def forward(self, x: torch.Tensor, y: torch.Tensor, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.stage.training_step(x, y, images)
        loss = out.loss
        if self.grad_scale != 1.0:  # the value stays the loss; its gradient is scaled (config.GRAD_SCALES)
            scaled = loss * self.grad_scale
            loss = loss.detach() + (scaled - scaled.detach())
        return loss, out.logits


def train(
    config: TrainConfig,
    dataset: Dataset | None = None,
    progress: bool = True,
    on_epoch: Callable[[dict], None] | None = None,
    on_note: Callable[[str], None] | None = None,
) -> Checkpoint:
    """Train ``config.stage`` and return the final checkpoint (also written to the run folder).

    Args:
        config: what to train; ``None`` fields take the dataset's defaults.
        dataset: data already loaded (tests); by default ``load_dataset(config.dataset, ...)``.
        progress: show a progress bar with loss, accuracy and firing rate.
        on_epoch: called (on rank 0) with each epoch's metrics record.
        on_note: called (on rank 0) with a line the user should read before the run goes on: the
            schedule re-planned for a resumed run's new ``epochs``, or that it has nothing to train.

    Raises:
        TrainingInterrupted: after SIGTERM or SIGINT, once the checkpoint is written.
    """
    config, resumed = _start(config)
    config = check_config(_adopt_init(config))
    stage_cls = get_stage(config.stage)
    if not stage_cls.spiking:
        config = replace(config, timesteps=1, encoding="direct")
    # the inputs before the estimates: a missing --data-dir is the user's first thing to fix
    dataset = dataset or load_dataset(config.dataset, config.data_dir, seed=config.seed)
    size = _check_memory(config, stage_cls, dataset)
    apply_thread_policy(size.neurons * config.batch_size)
    device = resolve_device(config.device)
    world = distributed.setup(device)
    run = None
    try:
        run = _Run(config, stage_cls, dataset, resumed, distributed.local_device(device, world), world)
        if run.note and on_note and world.is_main:
            on_note(run.note)
        if device.type == "cpu" and world.rank == 0:
            _state_duration(config, size, len(run.data.train_y), len(run.data.test_y))
        checkpoint = run.fit(progress, on_epoch)
        distributed.barrier(world)  # no rank tears the group down while another still talks in it
        return checkpoint
    finally:
        if run is not None and run.lock is not None:
            run.lock.release()
        del run  # DistributedDataParallel's reducer holds the process group: it goes first
        distributed.teardown(world)


@dataclass
class Plateau:
    """``schedule: plateau``: the step schedule of He et al. (2016, "divided by 10 when the error plateaus"),
    read on the training accuracy. The lr holds until ``patience`` epochs in a row bring no training
    accuracy above the best so far (a plateau), then is divided by 10; the plateau after the second
    division ends the run: trained until flat at an lr above 0 (``epochs`` is only a cap then)."""

    patience: int
    best: float = -1.0
    waited: int = 0
    drops: int = 0
    converged: bool = False

    DROPS, FACTOR = 2, 0.1

    def step(self, accuracy: float, optimizer: torch.optim.Optimizer) -> bool:
        """Read one epoch's training accuracy; True when the run has converged (stop after this epoch)."""
        if accuracy > self.best:
            self.best, self.waited = accuracy, 0
            return False
        self.waited += 1
        if self.waited < self.patience:
            return False
        if self.drops == self.DROPS:
            self.converged = True
            return True
        for group in optimizer.param_groups:
            group["lr"] *= self.FACTOR
        self.drops, self.waited = self.drops + 1, 0
        return False


class _Run:
    """One training run: the state that lives from the first step to the last checkpoint."""

    def __init__(self, config, stage_cls, dataset, resumed, device, world: World) -> None:
        self.config, self.device, self.world = config, device, world
        if config.batch_size % world.size:
            raise SnnpipeError(
                f"batch_size={config.batch_size} does not split over {world.size} processes; "
                "give a multiple of the number of processes"
            )
        self.local_batch = config.batch_size // world.size
        self.validation = None
        if config.val_samples:
            dataset, self.validation = validation_split(dataset, config.val_samples)
        self.data = subset(dataset, config.train_samples, config.test_samples)
        self.augmentation = dataset_entry(config.dataset).augmentation if config.augment else None
        torch.manual_seed(config.seed)
        model = create_model(
            config.model, input_shape=self.data.spec.input_shape, num_classes=self.data.spec.num_classes,
            neuron=config.neuron, spiking=stage_cls.spiking, **config.model_args,
        )
        self.prior_history = _initial_weights(model, config) if resumed is None else []
        if model.delay_steps and resumed is None and any(
                isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and not int(m.num_batches_tracked)
                for m in model.modules()):
            raise SnnpipeError(
                "training in Loihi's timing (--quantize loihi) keeps BatchNorm statistics frozen, and this "
                f"{config.model}'s BatchNorm has none yet: train it first with --model-arg delay_shift=false "
                "(or any stage), then continue from that checkpoint with --init CKPT"
            )
        if config.quantize:  # quantization-aware training: the forward uses the exported weights
            from snnpipe.hw_targets.loihi.qat import apply_quantization

            apply_quantization(model, config.quantize)
        model.to(device)
        if any(isinstance(m, torch.nn.Conv2d) for m in model.modules()):
            # conv outputs, pooling and the in-place neuron updates all run faster in NHWC
            model.to(memory_format=torch.channels_last)
        self.model = model
        self.stage: Stage = stage_cls(model, config, self.data.spec).to(device)
        step_module: torch.nn.Module = _StepModule(
            self.stage, 1.0 / config.timesteps if config.grad_scale == "1/T" else 1.0)
        if world.distributed:
            ids = [device.index] if device.type == "cuda" else None
            step_module = torch.nn.parallel.DistributedDataParallel(step_module, device_ids=ids)
        self.step_fn = torch.compile(step_module) if config.compile else step_module
        self.optimizer = _optimizer(self.stage, config)
        self.sampler = DistributedSampler(
            range(len(self.data.train_y)), num_replicas=world.size, rank=world.rank,
            shuffle=True, seed=config.seed,
        )
        self.steps_per_epoch = -(-len(self.sampler) // self.local_batch)
        self.scheduler = (torch.optim.lr_scheduler.CosineAnnealingLR(self.optimizer, T_max=config.epochs * self.steps_per_epoch)
                          if config.schedule == "cosine" else None)
        self.plateau = Plateau(config.patience) if config.schedule == "plateau" else None
        self.epoch, self.step_in_epoch, self.sums = 0, 0, [0.0, 0.0, 0.0]
        self.noise_state: torch.Tensor | None = None
        self.activity: list[list[float]] | None = None
        self.epoch_records: list[dict] = []
        self.summary: dict | None = None
        self.note: str | None = None
        if resumed is not None:
            self._restore(resumed)
            self.note = self._nothing_to_train() or self._replan_schedule()
        self.lock: FolderLock | None = None
        if world.is_main:
            # a checkpoint: the weights, the stage's modules and the optimizer's state (Adam: 2 per
            # weight), twice while checkpoint.pt is replaced, plus a step file
            weights = sum(t.numel() * t.element_size() for t in self.stage.state_dict().values())
            self.lock = _claim_run_folder(config, resumed)
            try:
                _check_writable(self.lock.folder)
                check_free_space(self.lock.folder, 4 * (3 * weights + (1 << 20)), "this run's checkpoints")
            except SnnpipeError:
                self.lock.release()
                remove_if_unused(self.lock.folder)
                raise
            if resumed is not None:
                self._rewrite_metrics(self.lock.folder)
        # the other ranks write nothing, but name the checkpoint they return after rank 0's folder
        self.run_dir = Path(distributed.broadcast(str(self.lock.folder) if self.lock else None, world))
        self.stop_signal: int | None = None

    def _nothing_to_train(self) -> str | None:
        """On resume to no more epochs than the run has: the note that it stays as it is (a run cannot
        be cut back; ``fit`` returns its checkpoint unchanged)."""
        epochs, done = self.config.epochs, self.epoch
        if self.plateau is not None and self.plateau.converged:
            return (f"this run converged at epoch {done} (its training accuracy's third plateau, schedule plateau): "
                    "nothing to train, its checkpoint is unchanged")
        if epochs > done:
            return None
        partial = f" and {self.step_in_epoch} steps of epoch {done + 1}" if self.step_in_epoch else ""
        return (f"this run has already trained {done} epochs{partial}, and --epochs {epochs} asks for no more: "
                f"nothing to train, its checkpoint is unchanged; give --epochs above {done} to continue it")

    def _replan_schedule(self) -> str | None:
        """On resume with another ``epochs``: the cosine schedule of a run of the new length from the
        start, at the step reached, ``lr = eta_min + (base_lr - eta_min) * (1 + cos(pi * step / total)) / 2``
        (as timm's schedulers, which compute the lr from the step and the total, follow a changed
        ``--epochs``); the saved schedule would end at 0 and then climb back. Returns the note to show."""
        scheduler, total = self.scheduler, self.config.epochs * self.steps_per_epoch
        if scheduler is None or scheduler.T_max == total:
            return None
        planned, step = scheduler.T_max // self.steps_per_epoch, scheduler.last_epoch
        lrs = [scheduler.eta_min + (base - scheduler.eta_min) * (1 + math.cos(math.pi * step / total)) / 2
               for base in scheduler.base_lrs]
        for group, lr in zip(self.optimizer.param_groups, lrs):
            group["lr"] = lr  # the scheduler steps on from the lr it finds here
        scheduler.T_max, scheduler._last_lr = total, lrs
        return (f"this run was planned for {planned} epochs: its cosine learning-rate schedule is re-planned for "
                f"{self.config.epochs} (lr {lrs[0]:.3g} at epoch {step / self.steps_per_epoch:g}, annealed to "
                f"{scheduler.eta_min:g} at epoch {self.config.epochs})")

    # -- the loop --------------------------------------------------------------------------
    def fit(self, progress: bool, on_epoch) -> Checkpoint:
        ckpt = None
        epochs = progress_bars.bar(total=self.config.epochs, initial=self.epoch, desc=self.config.stage, unit="epoch",
                                   show=progress and self.world.is_main)
        with self._signals(), epochs:
            while self.epoch < self.config.epochs and not (self.plateau and self.plateau.converged):
                started = time.perf_counter()
                train_metrics = self._train_epoch(progress and self.world.is_main)
                seconds = time.perf_counter() - started
                lr = self.optimizer.param_groups[0]["lr"]  # at the epoch's end, before `Plateau` divides it
                last = self.epoch + 1 == self.config.epochs
                if self.plateau is not None:
                    last = self.plateau.step(train_metrics.accuracy, self.optimizer) or last
                self.summary = {
                    "stage": self.config.stage, "epochs": self.epoch + 1, "dataset": self.config.dataset,
                    "timesteps": self.config.timesteps, "encoding": self.config.encoding,
                    "test_acc": None, "firing_rate": None, "seed": self.config.seed,
                    **({"converged": self.plateau.converged} if self.plateau else {}),
                }
                # the test set after every epoch, or once after the last (`test_each_epoch`); its encoding
                # draws from its own generator, so reading it or not leaves the training bit for bit the same
                test = self._test() if self.config.test_each_epoch or last else {}
                record = {
                    "epoch": self.epoch + 1, "stage": self.config.stage, "train_loss": train_metrics.loss,
                    "train_acc": train_metrics.accuracy, **test, "train_firing_rate": train_metrics.firing_rate,
                    "lr": lr, "epoch_seconds": seconds,
                }
                if self.validation is not None:  # what a choice of weights reads: never the test set
                    val = evaluate(self.model, *self.validation, self.data.spec, self.config.encoding,
                                   self.config.timesteps, device=self.device, seed=self.config.seed, world=self.world)
                    record.update(val_loss=val.loss, val_acc=val.accuracy)
                    self.summary["val_acc"] = val.accuracy
                self.epoch, self.step_in_epoch, self.sums, self.noise_state = self.epoch + 1, 0, [0.0, 0.0, 0.0], None
                self.epoch_records.append(record)
                ckpt = self._save()
                if self.world.is_main:  # after the checkpoint: a crash between the two loses no line (resume rewrites it)
                    self._log(record)
                    if on_epoch:
                        on_epoch(record)
                epochs.update(1)
        if ckpt is None:  # nothing to train (`_nothing_to_train`)
            if self.summary is not None and self.summary.get("test_acc") is None:  # a checkpoint from before
                self._test()  # the last epoch of a run that reads the test set once: it has not been read
            ckpt = self._checkpoint()
            ckpt.path = self.run_dir / CHECKPOINT_NAME
        return ckpt

    def _test(self) -> dict[str, float]:
        """The test set's loss, accuracy and firing rate, also into the run's summary."""
        test = evaluate(self.model, self.data.test_x, self.data.test_y, self.data.spec, self.config.encoding,
                        self.config.timesteps, device=self.device, seed=self.config.seed, world=self.world)
        self.summary.update(test_acc=test.accuracy, firing_rate=test.firing_rate)
        return {"test_loss": test.loss, "test_acc": test.accuracy, "firing_rate": test.firing_rate}

    def _train_epoch(self, progress: bool) -> Metrics:
        config, stage, model = self.config, self.stage, self.model
        stage.train()
        firing_rate(model)
        if self.activity is not None:  # resumed within an epoch: its steps so far count
            set_activity(model, self.activity)
            self.activity = None
        self.sampler.set_epoch(self.epoch)
        order = torch.tensor(list(self.sampler), dtype=torch.long)
        noise = torch.Generator().manual_seed(config.seed * 100_003 + self.epoch * 1_009 + self.world.rank)
        if self.noise_state is not None:
            noise.set_state(self.noise_state)
        bar = progress_bars.bar(
            range(self.step_in_epoch, self.steps_per_epoch), total=self.steps_per_epoch, initial=self.step_in_epoch,
            show=progress, unit="batch", desc=f"{config.stage} epoch {self.epoch + 1}/{config.epochs}",
        )
        autocast = (
            torch.autocast(self.device.type, dtype=torch.bfloat16) if config.amp == "bf16"
            else contextlib.nullcontext()
        )
        for step in bar:
            index = order[step * self.local_batch:(step + 1) * self.local_batch]
            images = self.data.train_x[index]
            if self.augmentation is not None:
                images = augment(images, self.augmentation, self.data.spec.mean, noise)
            x = prepare_input(images, self.data.spec, config.encoding, config.timesteps, noise)
            x, y, images = to_device(x, self.device), self.data.train_y[index].to(self.device), images.to(self.device)
            with autocast:
                loss, logits = self.step_fn(x, y, images)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            self.stage.after_step()
            if self.scheduler is not None:
                self.scheduler.step()
            self.step_in_epoch = step + 1
            value = float(loss.detach())
            if not math.isfinite(value):
                raise TrainingDiverged(
                    f"training diverged: the loss was {value} at epoch {self.epoch + 1}, step {step + 1}; nothing of "
                    f"this epoch was saved; train again with a lower --lr (it was {config.lr:g})")
            self.sums[0] += value * len(y)
            self.sums[1] += int((logits.detach().argmax(1) == y).sum())
            self.sums[2] += len(y)
            self.noise_state = noise.get_state()
            if progress:
                bar.set_postfix(
                    loss=f"{self.sums[0] / self.sums[2]:.3f}", acc=f"{self.sums[1] / self.sums[2]:.3f}",
                    rate=f"{firing_rate(model, reset=False):.3f}", refresh=False,
                )
            if self._should_stop():
                path = self._save()
                raise TrainingInterrupted(self.stop_signal or signal.SIGTERM, path.path)
            every = config.checkpoint_every
            if every and self._global_step() % every == 0 and self.step_in_epoch < self.steps_per_epoch:
                self._save()
        loss_sum, correct, seen = distributed.all_reduce_sum(self.sums, self.world)
        return Metrics(loss_sum / seen, correct / seen, firing_rate(model))

    def _rewrite_metrics(self, folder: Path) -> None:
        """On resume: metrics.jsonl holds exactly the checkpoint's epochs, one line each (a crash
        after a line and before its checkpoint would otherwise leave that epoch twice)."""
        path = folder / METRICS_NAME
        try:
            with atomic_path(path) as tmp:
                tmp.write_text("".join(json.dumps(record) + "\n" for record in self.epoch_records))
        except OSError as err:
            raise SnnpipeError(f"cannot rewrite {path} ({err.strerror}); fix the folder, then --resume") from None

    def _log(self, record: dict) -> None:
        path = self.run_dir / METRICS_NAME
        try:  # never through a symbolic link planted there: it would append to whatever it names
            with os.fdopen(os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o666), "a") as log:
                log.write(json.dumps(record) + "\n")
        except OSError as err:
            if err.errno == errno.ELOOP:
                raise SnnpipeError(f"{path} is a symbolic link, not this run's log: remove it, then --resume "
                                   f"{self.run_dir / CHECKPOINT_NAME} (this epoch's checkpoint is saved)") from None
            raise SnnpipeError(f"cannot append to {self.run_dir / METRICS_NAME} ({err.strerror}); fix the folder, then --resume") from None

    def _global_step(self) -> int:
        return self.epoch * self.steps_per_epoch + self.step_in_epoch

    # -- signals ---------------------------------------------------------------------------
    @contextlib.contextmanager
    def _signals(self):
        """SIGTERM/SIGINT set a flag the loop checks after each step (main thread only)."""
        if threading.current_thread() is threading.main_thread():
            previous = {s: signal.signal(s, self._on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
        else:
            previous = {}
        try:
            yield
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def _on_signal(self, signum, _frame) -> None:
        self.stop_signal = signum

    def _should_stop(self) -> bool:
        if not self.world.distributed:
            return self.stop_signal is not None
        # every rank must stop at the same step, or the next all-reduce would hang
        return distributed.all_reduce_sum([1.0 if self.stop_signal else 0.0], self.world)[0] > 0

    # -- checkpoints -----------------------------------------------------------------------
    def _checkpoint(self) -> Checkpoint:
        config = self.config
        history = self.prior_history + ([self.summary] if self.summary else [])
        return Checkpoint(
            model_name=config.model, model_args=dict(config.model_args), spiking=self.stage.spiking,
            neuron=config.neuron, timesteps=config.timesteps, encoding=config.encoding, data=self.data.spec,
            state_dict={k: v.detach().cpu().contiguous() for k, v in self.stage.model_state_dict().items()},
            history=history,
            training={
                "config": config.to_dict(),
                "epoch": self.epoch,
                "step_in_epoch": self.step_in_epoch,
                "sums": list(self.sums),
                "noise_state": self.noise_state,
                "activity": activity(self.model) if self.step_in_epoch else None,
                "epochs": self.epoch_records,
                "summary": self.summary,
                "prior_history": self.prior_history,
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict() if self.scheduler else None,
                "plateau": asdict(self.plateau) if self.plateau else None,
                "stage": {k: v.detach().cpu() for k, v in self.stage.aux_state_dict().items()},
            },
        )

    def _save(self) -> Checkpoint:
        """Write the checkpoint (rank 0), keep it as step-<global step>.pt, prune to the last K."""
        ckpt = self._checkpoint()
        if not self.world.is_main:
            ckpt.path = self.run_dir / CHECKPOINT_NAME
            return ckpt
        try:
            path = ckpt.save(self.run_dir / CHECKPOINT_NAME)
            kept = self.run_dir / f"step-{self._global_step():08d}.pt"
            kept.unlink(missing_ok=True)
            os.link(path, kept)  # a second name for the same bytes: later saves replace checkpoint.pt only
            for old in sorted(self.run_dir.glob("step-*.pt"))[:-self.config.keep]:
                old.unlink()
        except OSError as err:
            raise SnnpipeError(
                f"cannot write a checkpoint in {self.run_dir} ({err.strerror}); the previous checkpoint "
                "there is intact: free space or fix permissions, then --resume it"
            ) from None
        return ckpt

    def _restore(self, ckpt: Checkpoint) -> None:
        state = ckpt.training
        try:
            self.model.load_state_dict(ckpt.state_dict)
            self.stage.load_aux_state_dict(state.get("stage", {}))
            self.optimizer.load_state_dict(state["optimizer"])
            if self.scheduler is not None:
                self.scheduler.load_state_dict(state["scheduler"])
            if self.plateau is not None:
                self.plateau = Plateau(**state["plateau"])
            self.epoch, self.step_in_epoch = int(state["epoch"]), int(state.get("step_in_epoch", 0))
            self.sums = list(state.get("sums", [0.0, 0.0, 0.0]))
            self.noise_state = state.get("noise_state")
            self.activity = state.get("activity") if self.step_in_epoch else None
            self.epoch_records = list(state.get("epochs", []))
            self.summary = state.get("summary")
            self.prior_history = list(state.get("prior_history", []))
        except (KeyError, RuntimeError, ValueError, TypeError) as err:
            raise CheckpointError(f"cannot resume from this checkpoint: its training state is damaged ({err})") from None


def parameter_groups(stage: Stage, weight_decay: float) -> list[dict]:
    """The optimizer's groups: weight decay on the weights of convolutions and linear layers (every
    parameter of two or more dimensions), none on biases, BatchNorm's scale and shift or other vectors
    (joint's singular values), as the official RateBP and ESD code splits them (``split_params``)."""
    params = list(stage.trainable())
    return [{"params": [p for p in params if p.ndim > 1], "weight_decay": weight_decay},
            {"params": [p for p in params if p.ndim <= 1], "weight_decay": 0.0}]


def _optimizer(stage: Stage, config: TrainConfig) -> torch.optim.Optimizer:
    groups = parameter_groups(stage, config.weight_decay)
    if config.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=config.lr, momentum=config.momentum)
    return torch.optim.Adam(groups, lr=config.lr)
