"""ONNX export: the SNN unrolled over T and its ANN twin, each verified with onnxruntime.

- ``<name>.onnx``: the SNN over its T timesteps as one graph (opset 17, TorchScript exporter).
  Input ``x``: the encoded input (T, B, C, H, W). Outputs: ``logits`` (T, B, classes), the per-step
  readout whose mean over T is the prediction, and ``spikes_<i>`` (T, B, ...), the spikes of every
  LIF layer in order. Neuron state is unrolled, not an input: every run starts from rest, as the
  model does. The batch axis is dynamic; T is fixed at export.
- ``<name>.ann.onnx``: the ANN twin (ReLU for LIF, same weights) on one analog input (B, C, H, W):
  the registered model's twin, or, for a network with no registry entry, its typed graph
  (`snnpipe.models.tracer`, BatchNorm folded) built with ReLU in place of every neuron
  (`snnpipe.models.graph`).

The spiking layers whose spikes are outputs are the neurons of the graph's tracer (the neuron
protocol, ``ir_node()``), in the model's module order.

Verification (always): onnxruntime and torch run the same input — the first test batch, or random
input when there is no data — and must agree within ``atol`` (1e-5) on every float output, with
identical spikes. BatchNorm is exported as BatchNormalization (eval statistics), not folded, so
both runtimes compute the same graph.
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
from snnpipe.hw_targets import ExportError, ExportRequest, ExportResult, atomic_path, register_exporter
from snnpipe.hw_targets.folding import fold_batchnorm
from snnpipe.models import SpikingModel, create_model, ir
from snnpipe.models.graph import graph_model_args
from snnpipe.models.tracer import TraceError, neuron_node, trace

OPSET = 17
ATOL = 1e-5


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
        self.lifs = [m for m in model.modules() if _spiking(m)]

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


def _spiking(module: nn.Module) -> bool:
    """Whether ``module`` is a spiking neuron by the tracer's neuron protocol."""
    try:
        return isinstance(neuron_node(module), ir.CubaLIF)
    except ValueError:  # a neuron with no node (the ANN twin's ReLU)
        return False


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


def _sample(request: ExportRequest, samples: int) -> Tensor:
    if request.batches is not None:
        for x, _ in request.batches():
            return x[:, :samples].contiguous().float()
    return torch.rand(request.timesteps, samples, *request.input_shape)


@register_exporter("onnx", ".onnx", OnnxOptions)
def export_onnx(request: ExportRequest) -> ExportResult:
    """Write the SNN (unrolled) and its ANN twin as ONNX, and verify both with onnxruntime."""
    options = request.options or OnnxOptions()
    model = request.model.eval()
    out = Path(request.out)
    ann_path = out.with_name(out.name.removesuffix(".onnx") + ".ann.onnx") if model.spiking else out
    claim_output(ann_path)  # before the work: another export writing it is refused now, not at the end
    if model.spiking and os.path.lexists(ann_path) and not request.force:
        raise ExportError(f"{ann_path} exists; pass --force to overwrite it or --out to write elsewhere")
    x = _sample(request, options.verify_samples)
    report: dict = {"opset": options.opset, "timesteps": request.timesteps, "encoding": request.encoding}
    if model.spiking:
        unrolled = Unrolled(model).eval()  # torch.onnx.export restores the mode it found
        names = ["logits"] + [f"spikes_{i}" for i in range(len(unrolled.lifs))]
        data = _to_onnx(unrolled, x, ["x"], names, {n: {1: "batch"} for n in ["x", *names]}, options.opset)
        report["snn"] = verify(unrolled, data, x, len(unrolled.lifs))
        twin_model = ann_twin(model, tuple(request.input_shape))
    else:
        data, twin_model = None, model
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


def ann_twin(model: SpikingModel, input_shape: tuple[int, ...]) -> SpikingModel:
    """The ANN twin of ``model`` (module docstring): ReLU in place of every neuron, the same weights.

    Raises:
        ExportError: a model with no registry entry whose graph cannot be traced or built, named.
    """
    if getattr(model, "zoo_name", None):
        twin = create_model(model.zoo_name, input_shape=model.input_shape, num_classes=model.num_classes,
                            spiking=False, **dict(getattr(model, "zoo_args", {})))
        twin.load_state_dict(model.state_dict())
        return twin
    try:
        graph = trace(fold_batchnorm(model), input_shape)
        name, args = graph_model_args(graph)
        classes = graph.nodes[graph.output].shape
        return create_model(name, input_shape=input_shape, num_classes=classes[0], spiking=False,
                            **{**args, "graph": graph})
    except (TraceError, SnnpipeError, IndexError) as err:
        raise ExportError(f"the ANN twin of this model cannot be built from its graph: {err}") from None
