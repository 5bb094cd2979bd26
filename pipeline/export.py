"""``export(checkpoint, target) -> ExportResult``: a checkpoint into a file for another runtime.

The exporters live in ``hw_targets/`` and register themselves (`snnpipe.hw_targets.find_exporter`
finds the one of a target, and its options); this stage checks the options, loads the checkpoint,
gives the exporter the model and the encoded test set (for verification and accuracy), writes the
report beside the file as JSON, and refuses to overwrite an existing file unless ``force``.

Each file it writes belongs to one export at a time (`files.claimed_outputs`: another export
writing any of them is refused in one line), and the file and its report appear together or not at all (`files.atomic_group`).
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path
from typing import Any, Iterator, Sequence

import torch

from snnpipe.errors import SnnpipeError
from snnpipe.files import atomic_group, atomic_path, claim_output, claimed_outputs, disk_error
from snnpipe.hw_targets import ExportError, ExportRequest, ExportResult, find_exporter
from snnpipe.pipeline.checkpoint import Checkpoint
from snnpipe.pipeline.checkpoint_file import is_nir_file
from snnpipe.pipeline.importer import load_network
from snnpipe.pipeline.data import TEST_BATCH_SIZE, iterate_batches, load_dataset
from snnpipe.pipeline.encoding import encode
from snnpipe.pipeline.memory import check_inference

def encoded_test_batches(ckpt: Checkpoint, data_dir: str | Path | None = None, samples: int | None = None,
                 batch_size: int = TEST_BATCH_SIZE, seed: int | None = None, timesteps: int | None = None):
    """A callable giving the checkpoint's test set as encoded (T, B, ...) batches, reproducibly
    (T: the checkpoint's, or ``timesteps``). Rate-coded spikes are drawn as training drew them for
    its per-epoch test (the run's seed, `TEST_BATCH_SIZE`), so every step sees the same spikes."""
    return encoded_batches(ckpt.data.name, ckpt.encoding, timesteps or ckpt.timesteps, ckpt.data.mean, ckpt.data.std,
                           ckpt.data.split_seed, data_dir, samples, batch_size, seed)


def encoded_batches(dataset_name: str, encoding: str, timesteps: int, mean: Sequence[float], std: Sequence[float],
                    split_seed: int = 0, data_dir: str | Path | None = None, samples: int | None = None,
                    batch_size: int = TEST_BATCH_SIZE, seed: int | None = None):
    """`encoded_test_batches` for a dataset named outright: its test set split with ``split_seed``,
    the first ``samples``, encoded for ``timesteps`` steps with random spikes drawn from ``seed``
    (default ``split_seed``: a run's seed seeds both)."""
    seed = split_seed if seed is None else seed
    dataset = load_dataset(dataset_name, data_dir, seed=split_seed)
    images, labels = dataset.test_x, dataset.test_y
    if samples is not None:
        images, labels = images[:samples], labels[:samples]

    def encoded() -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        generator = torch.Generator().manual_seed(seed)
        for x, y in iterate_batches(images, labels, batch_size, shuffle=False):
            yield encode(x, encoding, timesteps, mean, std, generator), y

    count = -(-len(labels) // batch_size)
    return lambda: _Batches(encoded(), count)


class _Batches:
    """One pass over encoded batches that knows how many there are (a progress bar's total)."""

    def __init__(self, batches: Iterator[tuple[torch.Tensor, torch.Tensor]], count: int) -> None:
        self.batches, self.count = batches, count

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        return self.batches

    def __len__(self) -> int:
        return self.count


def data_metadata(ckpt: Checkpoint) -> dict[str, Any]:
    """What a reader of an exported file needs to draw the checkpoint's encoded test set again
    (`encoded_test_batches`): the dataset, the seed of its split and of the rate-coded spikes, and
    the normalization of the direct encoding."""
    return {"dataset": ckpt.data.name, "data_seed": ckpt.data.split_seed, "mean": list(ckpt.data.mean),
            "std": list(ckpt.data.std)}


def export(
    checkpoint: Checkpoint | str | Path,
    target: str,
    out: str | Path | None = None,
    force: bool = False,
    data_dir: str | Path | None = None,
    samples: int | None = None,
    timesteps: int | None = None,
    **options: Any,
) -> ExportResult:
    """Export a checkpoint to ``target`` and return what was written and measured.

    Args:
        checkpoint: a `Checkpoint` or the path of one, or of a NIR graph: it is imported as
            ``snnpipe import nir`` imports it (`importer.import_nir`; its metadata, else the defaults
            there, give T, the encoding and the dataset), into memory only.
        target: a registered export target (``loihi``, ``onnx``, ``nir``).
        out: the file to write; by default beside the checkpoint, named after the target.
        force: overwrite an existing file.
        data_dir: where the checkpoint's dataset lives, for verification and accuracy.
        samples: use only the first N test samples.
        timesteps: run the exported network for T steps per input (default: the checkpoint's T).
        options: the target's options (the fields of its entry's ``options`` dataclass); an unknown
            or inapplicable one is refused before any work, naming it and the target.
    """
    entry = find_exporter(target)
    parsed = entry.parse_options(options)
    ckpt = checkpoint if isinstance(checkpoint, Checkpoint) else load_network(checkpoint)
    if out is None and not isinstance(checkpoint, Checkpoint) and is_nir_file(checkpoint):
        out = Path(checkpoint).parent / "export" / f"{Path(checkpoint).stem}{entry.suffix}"
    if out is None:
        base = ckpt.path.parent if ckpt.path else Path(".")
        out = base / "export" / f"{ckpt.model_name}{entry.suffix}"
    out = Path(out)
    report_path = out.with_name(out.name + ".report.json")
    if timesteps is not None and timesteps < 1:
        raise SnnpipeError(f"--timesteps {timesteps} is out of range: at least 1")
    if samples is not None and samples < 1:
        raise SnnpipeError(f"--samples {samples} is out of range: at least 1")
    timesteps = timesteps or ckpt.timesteps
    check_inference(replace(ckpt, timesteps=timesteps), "exporting and verifying", samples, TEST_BATCH_SIZE,
                    "export it for fewer timesteps (--timesteps N)")
    source = ckpt.path if isinstance(checkpoint, Checkpoint) else checkpoint
    # each file it writes is this export's (the exporter claims those it adds), and none is the one it exports
    with claimed_outputs(inputs=[source] if source else []):
        for path in (out, report_path):
            claim_output(path)
        for path in (out, report_path):  # a link counts, dangling or not: it is replaced, never followed
            if os.path.lexists(path) and not force:
                raise SnnpipeError(f"{path} exists; pass --force to overwrite it or --out to write elsewhere")
        model = ckpt.build_model().eval()
        request = ExportRequest(
            model=model, input_shape=tuple(ckpt.data.input_shape), timesteps=timesteps, encoding=ckpt.encoding,
            out=out, batches=encoded_test_batches(ckpt, data_dir, samples, timesteps=timesteps), options=parsed,
            force=force, metadata=data_metadata(ckpt),
        )
        try:
            with atomic_group():  # the file only with its report
                result = entry.fn(request)
                with atomic_path(report_path) as tmp:
                    tmp.write_text(json.dumps({"target": target, "file": str(out), **result.report}, indent=2,
                                              default=str) + "\n")
        except OSError as err:
            raise ExportError(f"cannot write {out} ({disk_error(err, out)}); nothing was written there") from None
    return result
