"""ONNX export: the model's typed graph, built back into a module, written unrolled over T and as its
ANN twin, each verified with onnxruntime.

As every export, it goes through the typed graph: the model is traced (`snnpipe.models.tracer`,
BatchNorm folded) and built back by the builder of imported networks (`snnpipe.models.graph`), as
the SNN and, ReLU in place of every neuron, its ANN twin; the files are written from those modules:

- ``<name>.onnx``: the SNN over its T timesteps as one graph (opset 17, TorchScript exporter).
  Input ``x``: the encoded input (T, B, C, H, W). Outputs: ``logits`` (T, B, classes), the per-step
  readout whose mean over T is the prediction, and ``spikes_<i>`` (T, B, ...), the spikes of every
  LIF node, in the built module's order. Neuron state is unrolled, not an input: every run starts
  from rest, as the model does. The batch axis is dynamic; T is fixed at export.
- ``<name>.ann.onnx``: the ANN twin on one analog input (B, C, H, W). An ANN checkpoint writes this
  file only (traced as the SNN with its weights: ReLU has no node).

Verification (always): onnxruntime and the built module run the same input — the first test batch,
or random input when there is no data — and must agree within ``atol`` (1e-5) on every float output,
with identical spikes. Folding is exact in real arithmetic, not in float32: the folded network's
spikes can differ from the unfolded model's where a voltage lies within rounding of the threshold
(on the zoo with random BatchNorm statistics, 64 samples: none in the chains, 0.07% and 0.2% in
resnet18 and resnet19, no prediction). So the folding is checked on that input by the accuracy: it
may change whether at most `FOLD_TOLERANCE` samples are right (with no labels: their predictions);
the report's ``batchnorm_folding`` counts the spikes and predictions that differ.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import numpy as np
import torch
from torch import Tensor, nn

from snnpipe.arguments import PositiveInt, Range
from snnpipe.errors import SnnpipeError
from snnpipe.files import claim_output
from snnpipe.hw_targets import ExportError, ExportRequest, ExportResult, UnsupportedLayerError, atomic_path, register_exporter
from snnpipe.hw_targets.folding import fold_batchnorm
from snnpipe.models import SpikingModel, create_model
from snnpipe.models.graph import graph_model_args
from snnpipe.models.neurons import CubaLIF
from snnpipe.models.tracer import TraceError, trace

OPSET = 17
ATOL = 1e-5
FOLD_TOLERANCE = 1  # verification samples folding may turn right or wrong (a prediction on a tie)


@dataclass
class OnnxOptions:
    """Options of ``--target onnx``.

    Attributes:
        opset: the ONNX opset written. 9 is the lowest whose files onnxruntime runs for these
            models (opsets 7 and 8 write ``ConstantFill``, which it no longer has); 20 is the highest
            that torch's TorchScript exporter writes (``torch.onnx._constants``, torch 2.x).
        verify_samples: test inputs run through onnxruntime beside torch.
    """

    opset: Annotated[int, Range(9, 20)] = field(default=OPSET, metadata={"help": f"ONNX opset, 9 to 20 (default {OPSET})"})
    verify_samples: PositiveInt = field(default=8, metadata={"help": "Test inputs the verification runs (default 8)"})


class Unrolled(nn.Module):
    """The SNN over T steps from rest: x (T, B, ...) -> (logits (T, B, K), spikes of each LIF (T, B, ...))."""

    def __init__(self, model: SpikingModel) -> None:
        super().__init__()
        self.model = model
        self.lifs = [m for m in model.modules() if isinstance(m, CubaLIF)]

    def forward(self, x: Tensor) -> tuple[Tensor, ...]:
        recorded: dict[int, list[Tensor]] = {id(m): [] for m in self.lifs}
        handles = [m.register_forward_hook(lambda mod, _i, out: recorded[id(mod)].append(out)) for m in self.lifs]
        try:
            self.model.reset_state()
            logits = torch.stack([self.model.step(x[t]) for t in range(x.shape[0])])
        finally:
            for handle in handles:
                handle.remove()
        return (logits, *[torch.stack(recorded[id(m)]) for m in self.lifs])


class Twin(nn.Module):
    """The ANN twin on one analog input: x (B, ...) -> logits (B, K)."""

    def __init__(self, model: SpikingModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: Tensor) -> Tensor:
        return self.model.step(x)


def _to_onnx(module: nn.Module, example: Tensor, inputs: list[str], outputs: list[str], dynamic: dict,
             opset: int = OPSET) -> bytes:
    buffer = io.BytesIO()
    try:
        with torch.no_grad():
            torch.onnx.export(module, (example,), buffer, dynamo=False, opset_version=opset,
                              input_names=inputs, output_names=outputs, dynamic_axes=dynamic)
    except Exception as err:  # the exporter's own errors are many and untyped
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ExportError(f"torch.onnx could not export {type(module.model).__name__} ({first[:160]})") from None
    return buffer.getvalue()


def _run_onnx(data: bytes, x: Tensor) -> list[np.ndarray]:
    import onnxruntime

    session = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x.numpy()})


def verify(module: nn.Module, data: bytes, x: Tensor, spike_outputs: int) -> dict:
    """Run torch and onnxruntime on ``x``; raise ExportError unless floats agree and spikes are equal."""
    module.eval()
    with torch.no_grad():
        expected = module(x)
    expected = list(expected) if isinstance(expected, tuple) else [expected]
    got = _run_onnx(data, x.contiguous())
    floats = len(expected) - spike_outputs
    max_diff = max(float(np.abs(e.numpy() - g).max()) for e, g in zip(expected[:floats], got[:floats]))
    mismatched = sum(int((e.numpy() != g).sum()) for e, g in zip(expected[floats:], got[floats:]))
    spikes = sum(int(e.sum()) for e in expected[floats:])
    if max_diff > ATOL or mismatched:
        raise ExportError(f"onnxruntime disagrees with torch: max |diff| {max_diff:.3g} (allowed {ATOL}), {mismatched} spikes differ")
    return {"max_abs_diff": max_diff, "spikes_compared": spikes, "spikes_mismatched": mismatched}


def check_folding(model: SpikingModel, snn: SpikingModel, x: Tensor, y: Tensor | None) -> dict:
    """The unfolded ``model`` against ``snn``, built from its folded graph, on ``x``: ExportError
    where their accuracy on labels ``y`` (else their predictions) differs by more than
    `FOLD_TOLERANCE` samples (module docstring)."""
    paths = {id(m): name for name, m in model.named_modules()}  # a built module's ir_name: that path
    unfolded, folded = Unrolled(model).eval(), Unrolled(snn).eval()
    with torch.no_grad():
        want, got = unfolded(x), folded(x)
    spikes = dict(zip([paths[id(m)] for m in unfolded.lifs], want[1:]))
    flips = [(spikes[m.ir_name] != out).sum() for m, out in zip(folded.lifs, got[1:]) if m.ir_name in spikes]
    before, after = want[0].mean(0).argmax(-1), got[0].mean(0).argmax(-1)
    changed = int((before != after).sum()) if y is None else abs(int((before == y).sum()) - int((after == y).sum()))
    if changed > FOLD_TOLERANCE:
        raise ExportError(f"folding BatchNorm changed the {'predictions' if y is None else 'accuracy'} of {changed} "
                          f"of {len(before)} verification samples (allowed {FOLD_TOLERANCE})")
    return {"max_abs_diff": float((want[0] - got[0]).abs().max()), "spikes_compared": int(sum(s.sum() for s in want[1:])),
            "spikes_mismatched": int(sum(flips)), "predictions_differ": int((before != after).sum())}


def _sample(request: ExportRequest, samples: int) -> tuple[Tensor, Tensor | None]:
    if request.batches is not None:
        for x, y in request.batches():
            return x[:, :samples].contiguous().float(), y[:samples]
    return torch.rand(request.timesteps, samples, *request.input_shape), None


@register_exporter("onnx", ".onnx", OnnxOptions)
def export_onnx(request: ExportRequest) -> ExportResult:
    """Build the SNN and its ANN twin from the model's graph, write both as ONNX, and verify each
    with onnxruntime against the module it was written from."""
    options = request.options or OnnxOptions()
    model = request.model.eval()
    out = Path(request.out)
    ann_path = out.with_name(out.name.removesuffix(".onnx") + ".ann.onnx") if model.spiking else out
    claim_output(ann_path)  # before the work: another export writing it is refused now, not at the end
    if model.spiking and os.path.lexists(ann_path) and not request.force:
        raise ExportError(f"{ann_path} exists; pass --force to overwrite it or --out to write elsewhere")
    snn, twin_model = from_graph(model, tuple(request.input_shape))
    x, y = _sample(request, options.verify_samples)
    report: dict = {"opset": options.opset, "timesteps": request.timesteps, "encoding": request.encoding}
    data = None
    if snn is not None:
        unrolled = Unrolled(snn).eval()  # torch.onnx.export restores the mode it found
        names = ["logits"] + [f"spikes_{i}" for i in range(len(unrolled.lifs))]
        data = _to_onnx(unrolled, x, ["x"], names, {n: {1: "batch"} for n in ["x", *names]}, options.opset)
        report["snn"] = verify(unrolled, data, x, len(unrolled.lifs))
        report["batchnorm_folding"] = check_folding(model, snn, x, y)
    twin = Twin(twin_model).eval()
    ann_data = _to_onnx(twin, x.mean(0), ["x"], ["logits"], {"x": {0: "batch"}, "logits": {0: "batch"}}, options.opset)
    report["ann"] = verify(twin, ann_data, x.mean(0), 0)
    for path, blob in ((out, data), (ann_path, ann_data)):
        if blob is not None:
            with atomic_path(path) as tmp:
                tmp.write_bytes(blob)
    report["files"] = [str(p) for p, b in ((out, data), (ann_path, ann_data)) if b is not None]
    report["file_bytes"] = sum(len(b) for b in (data, ann_data) if b is not None)
    return ExportResult("onnx", out if data is not None else ann_path, report)


def from_graph(model: SpikingModel, input_shape: tuple[int, ...]) -> tuple[SpikingModel | None, SpikingModel]:
    """(the SNN, its ANN twin) built from ``model``'s graph, BatchNorm folded (module docstring); the
    SNN is None for an ANN checkpoint.

    Raises:
        UnsupportedLayerError: a module the graph has no node for, by path.
        ExportError: a graph that cannot be built into a model, named.
    """
    snn = model
    if not model.spiking and getattr(model, "zoo_name", None):  # ReLU has no node: the SNN with its weights
        snn = create_model(model.zoo_name, input_shape=model.input_shape, num_classes=model.num_classes, **model.zoo_args)
        snn.load_state_dict(model.state_dict())
    try:
        graph = trace(fold_batchnorm(snn), input_shape)
    except TraceError as err:
        raise UnsupportedLayerError(err.path, err.module, "onnx", err.reason) from None
    name, args = graph_model_args(graph)
    try:
        built = [create_model(name, input_shape=input_shape, num_classes=graph.nodes[graph.output].shape[0],
                              spiking=spiking, **{**args, "graph": graph}).eval() for spiking in (True, False)]
    except (SnnpipeError, IndexError) as err:
        raise ExportError(f"this model cannot be built from its graph: {err}") from None
    return (built[0] if model.spiking else None), built[1]
