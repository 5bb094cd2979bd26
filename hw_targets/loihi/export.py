"""``snnpipe export --target loihi``: a Lava netx HDF5 file (or a Loihi graph file), its accuracy in
fixed point, and proof.

Order (SPEC §4): fold BatchNorm -> fold average pooling -> quantize (`quantize`) -> run the
bit-accurate simulator (`simulator`) on the test set next to the float model -> refuse the export
when the accuracy drops by more than ``max_drop`` points (default 1.0) or when a current wrapped
around its 24 bits -> write the file (a temporary file beside the target) -> with ``verify="lava"``,
run that file in Lava's ``Loihi2SimCfg(select_tag="fixed_pt")`` on the first `VERIFY_SAMPLES` test
inputs and require every layer's spikes (and the readout's voltage) to equal the simulator's -> rename
the file into place. Any failure leaves no file behind.

The file: a chain with spike input (``rate``, ``latency``) is a netx file (`netx`), which lava-dl
reads. A graph that is no chain (a residual network, any DAG of a NIR file: `grouping`) or a
``direct``-coded model is a Loihi graph
(`graph`), written as ``snnpipe.loihi.graph/1`` (`graph_file`; its ``format`` attribute says so),
which ``lava_runner.py`` builds as a Lava process graph: netx chains layers only and its input
layer carries unary spikes.

The file's root attributes hold T, the encoding, the steps, and the request's ``metadata`` (the
dataset, its split seed and normalization), so that ``snnpipe profile FILE`` runs it on the test
set it was checked on.

Direct (analog) input reaches the first layer as graded spikes of ``input_bits`` bits (default
`DEFAULT_INPUT_BITS`, signed; `quantize` for the exponent); the report gives the accuracy of the
float model on the input at that precision beside its accuracy on the analog input.

Options: `LoihiOptions` (``max_drop`` in points, ``verify`` (``lava``), ``lava_python``,
``verify_samples``, ``input_bits`` (graded input, 2..24; direct encoding only)).

The report: accuracy in float and in fixed point (and the drop), every layer's exponent, mantissa
range, clipping and overflow counts, neurons and synapses, Loihi 2 cores with the per-core limits and
their source (`cores`), the file size, and the verification.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import torch
from torch import Tensor

from snnpipe import __version__, progress
from snnpipe.arguments import NonNegativeFloat, PositiveInt, Range
from snnpipe.hw_targets import ExportError, ExportRequest, ExportResult, atomic_path, register_exporter
from snnpipe.hw_targets.loihi import fixed_point as fx
from snnpipe.hw_targets.loihi.cores import LOIHI2, network_cores
from snnpipe.hw_targets.loihi.lava_bridge import lava_input, lava_python, run_lava
from snnpipe.hw_targets.loihi.graph import MAX_INPUT_BITS, LoihiGraph
from snnpipe.hw_targets.loihi.graph_file import FORMAT as GRAPH_FORMAT, write_graph
from snnpipe.hw_targets.loihi.netx import write_netx
from snnpipe.hw_targets.loihi.quantize import QuantizedModel, WeightOverflowError, quantize_model
from snnpipe.hw_targets.loihi.simulator import LayerCounters, LoihiSimulator
from snnpipe.models import SpikingModel

#: Largest accepted drop from float to fixed-point accuracy, in percentage points (lava-dl issue
#: #92: accuracy collapsing to chance after netx conversion must not pass silently).
DEFAULT_MAX_DROP = 1.0
#: Test inputs that ``--verify lava`` runs through Lava (Lava simulates one sample at a time).
VERIFY_SAMPLES = 8
#: Bits of the graded input of a direct-coded model: the weights' 8 bits (Loihi 2's graded spikes
#: carry up to 24, Intel's Loihi 2 brief, Table 1).
DEFAULT_INPUT_BITS = 8


class AccuracyDropError(ExportError):
    """Fixed point loses more accuracy than allowed."""


class LavaMismatchError(ExportError):
    """Lava's run of the written file differs from the simulator's."""


@dataclass
class Evaluation:
    """Float and fixed-point accuracy on the same encoded test inputs."""

    samples: int
    float_correct: int
    fixed_correct: int
    counters: list[LayerCounters]
    seconds_simulator: float
    float_quantized_input_correct: int | None = None

    @property
    def float_accuracy(self) -> float:
        return self.float_correct / self.samples

    @property
    def fixed_accuracy(self) -> float:
        return self.fixed_correct / self.samples

    @property
    def drop_pt(self) -> float:
        return 100.0 * (self.float_accuracy - self.fixed_accuracy)


@dataclass
class LoihiOptions:
    """Options of ``--target loihi``.

    Attributes:
        max_drop: the largest accepted drop from float to fixed-point accuracy, in points.
        verify: ``lava`` runs the written file in Lava and requires equal spikes.
        lava_python: the Lava environment's python (`lava_bridge.lava_python`).
        verify_samples: test inputs that ``--verify lava`` runs.
        input_bits: the graded input's precision, for a direct-coded model only (None:
            `DEFAULT_INPUT_BITS`).
    """

    max_drop: NonNegativeFloat = field(default=DEFAULT_MAX_DROP, metadata={
        "help": f"Refuse the export when fixed point loses more accuracy, in points (default {DEFAULT_MAX_DROP:g})"})
    verify: Literal["lava"] | None = field(default=None, metadata={
        "help": "lava: run the file in Lava and require its spikes to equal the simulator's"})
    lava_python: str | None = field(default=None, metadata={
        "help": "Python of the Lava environment (or SNNPIPE_LAVA_PYTHON)"})
    verify_samples: PositiveInt = field(default=VERIFY_SAMPLES, metadata={
        "help": f"Test inputs the verification runs (default {VERIFY_SAMPLES})"})
    input_bits: Annotated[int, Range(2, MAX_INPUT_BITS)] | None = field(default=None, metadata={
        "help": f"Bits of the graded input spikes of a direct-coded model (default {DEFAULT_INPUT_BITS})"})

    def __post_init__(self) -> None:
        if math.isinf(self.max_drop):
            raise ExportError(f"--max-drop {self.max_drop} is out of range: a finite number of points >= 0")


def _readout_range(folded: SpikingModel, x: Tensor) -> float:
    """The largest |sum over steps of the output| of the float model on ``x``."""
    with torch.no_grad():
        return float(folded(x.float()).cumsum(0).abs().max())


def evaluate(model: SpikingModel, simulator: LoihiSimulator, batches) -> Evaluation:
    """Accuracy of the float model (mean readout over T) and of the simulator on the same inputs;
    with graded input also of the float model on the input as Loihi receives it."""
    samples = float_correct = fixed_correct = 0
    graph = simulator.graph
    graded = 0 if graph.graded else None
    counters = [LayerCounters() for _ in graph.nodes]
    seconds = 0.0
    with torch.no_grad():
        for x, y in batches:
            x = x.float()
            float_correct += int((model(x).mean(0).argmax(1) == y).sum())
            if graded is not None:
                x_loihi = graph.quantize_input(x) * 2.0**graph.input_exp
                graded += int((model(x_loihi).mean(0).argmax(1) == y).sum())
            started = time.perf_counter()
            result = simulator.run(x)
            seconds += time.perf_counter() - started
            fixed_correct += int((result.predictions() == y).sum())
            samples += len(y)
            for total, layer in zip(counters, result.counters):
                total.add(layer)
    return Evaluation(samples, float_correct, fixed_correct, counters, seconds, graded)


def check_overflow(graph: LoihiGraph, counters: list[LayerCounters]) -> None:
    """Refuse a network whose current wrapped around (a silent sign flip) on the test set.

    Raises:
        WeightOverflowError: naming the first layer that wrapped.
    """
    for layer, count in zip(graph.nodes, counters):
        events = count.current_wraps + count.accumulator_wraps
        if events:
            raise WeightOverflowError(
                f"{layer.name}: the synaptic input overflowed Loihi's 24-bit current on {events} neuron updates of the "
                f"test set (inputs up to {count.max_abs_input} weight units; the limit is {fx.STATE_LIMIT >> fx.ACT_SHIFT}): "
                "the weights overflow; retrain with smaller weights (e.g. --weight-decay) or a higher threshold"
            )


def verify_with_lava(path: Path, simulator: LoihiSimulator, x: Tensor, python: Path) -> dict[str, Any]:
    """Run ``path`` (the simulator's network, written) in Lava on the input ``x`` (T, N, ...): spikes,
    or analog input that both receive as the graded integers `LoihiGraph.quantize_input` gives;
    and compare with the simulator.

    Every layer's spikes at every step must be equal, and the readout's u and v too (its threshold lies past the potentials calibration saw: see `graph_file` on when it can spike).

    Raises:
        LavaMismatchError: the first layer where they differ, with the count.
    """
    graph = simulator.graph
    timesteps, samples = x.shape[0], x.shape[1]
    steps = graph.steps_for(timesteps)
    readout = graph.nodes[-1].neuron.readout
    started = time.perf_counter()
    sim = simulator.run(x, record_spikes=True, record_state=readout)
    seconds_simulator = time.perf_counter() - started
    lava = run_lava(path, lava_input(graph.quantize_input(x), steps), python, state="last" if readout else None)
    compared = spikes = 0
    for i, layer in enumerate(graph.nodes):
        ours = sim.spikes[i].transpose(0, 1).numpy()
        theirs = lava.spikes[i]
        if ours.shape != theirs.shape or not np.array_equal(ours, theirs):
            differ = np.argwhere(ours != theirs) if ours.shape == theirs.shape else None
            where = f"first at sample {differ[0][0]}, step {differ[0][1]}" if differ is not None and len(differ) else "shapes differ"
            count = len(differ) if differ is not None else "all"
            raise LavaMismatchError(f"Lava's fixed_pt run disagrees with the simulator in {layer.name}: {count} spikes differ "
                                    f"({where}); the file was not written; report this as a bug")
        compared += ours.size
        spikes += int(ours.sum())
    if readout:
        for name, ours, theirs in (("u", sim.current[-1], lava.current[-1]), ("v", sim.voltage[-1], lava.voltage[-1])):
            if not np.array_equal(ours.transpose(0, 1).numpy(), theirs):
                raise LavaMismatchError(f"Lava's fixed_pt run disagrees with the simulator on the readout's {name} "
                                        f"({graph.nodes[-1].name}); the file was not written; report this as a bug")
    return {
        "runtime": "lava-dl 0.6.0, Loihi2SimCfg(select_tag='fixed_pt')", "samples": samples, "steps": steps,
        "layers": len(graph.nodes), "spike_values_compared": compared, "spikes": spikes, "mismatched": 0,
        "readout_voltage_equal": readout, "seconds_lava": round(lava.seconds_total, 3),
        "seconds_simulator": round(seconds_simulator, 4),
    }


def _layer_line(quant, layer, cores: int, counters: LayerCounters | None) -> str:
    shape = "x".join(map(str, layer.out_shape))
    if quant.relay:
        return (f"{quant.name}: relay {shape} of {layer.connections[0].source} (one step of delay aligning a shortcut), "
                f"{quant.neurons:,} neurons, {quant.synapses:,} synapses, {cores} cores")
    text = (f"{quant.name}: {quant.kind} {shape}, {quant.neurons:,} neurons, {quant.synapses:,} synapses, {cores} cores; "
            f"w = m*2^{quant.weight_exp} (m in [{quant.weight_mantissa_min}, {quant.weight_mantissa_max}], "
            f"{quant.weights_clipped} clipped, {quant.weights_zeroed} rounded to 0, rel. RMS error {quant.weight_rel_rmse:.2%})")
    text += "; readout (non-spiking)" if quant.readout else f"; vThMant {quant.vth_mant}"
    text += f"; bias {quant.biases_clipped} clipped; iDecay {quant.i_decay}, vDecay {quant.v_decay}"
    if quant.pools_folded:
        text += f"; folded {', '.join(quant.pools_folded)}"
    if len(quant.connections) > 1:
        text += f"; sums {' + '.join(quant.connections)}"
    if counters is not None and counters.voltage_saturations:
        text += f"; v saturated {counters.voltage_saturations} times"
    return text


def build_report(quantized: QuantizedModel, evaluation: Evaluation | None, request: ExportRequest, max_drop: float,
                 file_bytes: int, lava: dict[str, Any] | None) -> dict[str, Any]:
    """The export report: the scalars a user reads first, one line per layer, then the details."""
    graph = quantized.graph
    cores = network_cores(graph)
    steps = graph.steps_for(request.timesteps)
    report: dict[str, Any] = {}
    if evaluation is not None:
        report.update({
            "accuracy_float": round(evaluation.float_accuracy, 6),
            "accuracy_fixed_point": round(evaluation.fixed_accuracy, 6),
            "accuracy_drop_pt": round(evaluation.drop_pt, 4),
            "max_drop_pt": max_drop,
            "test_samples": evaluation.samples,
        })
        if evaluation.float_quantized_input_correct is not None:
            report["accuracy_float_on_graded_input"] = round(evaluation.float_quantized_input_correct / evaluation.samples, 6)
    else:
        report["accuracy"] = "not measured (no test data)"
    report["format"] = "netx (lava-dl)" if quantized.network is not None else GRAPH_FORMAT
    relays = sum(q.relay for q in quantized.layers)
    if relays:
        report["relays"] = f"{relays} relay layers align the shortcuts with their blocks' main branches"
    if graph.graded:
        used = graph.input_bits - (graph.input_exp - quantized.input_exp_for_range)
        report["input"] = (f"graded spikes, {graph.input_bits}-bit signed integers x_q = round(x / 2^{graph.input_exp}), "
                           f"clipped to [{-(1 << (graph.input_bits - 1))}, {(1 << (graph.input_bits - 1)) - 1}]; "
                           f"{used} bits used on the test data (the exponent its range asks for is "
                           f"{quantized.input_exp_for_range}; raised so that the first layer's current fits 24 bits)")
    report.update({
        "timesteps": request.timesteps, "steps": steps, "encoding": request.encoding,
        "neurons": sum(q.neurons for q in quantized.layers), "synapses": sum(q.synapses for q in quantized.layers),
        "loihi2_cores": sum(cores), "loihi2_chips": math.ceil(sum(cores) / LOIHI2.cores_per_chip),
        "core_limits": (f"{LOIHI2.neurons_per_core:,} neurons and {LOIHI2.memory_bytes_per_core // 1024} KB "
                        f"(1 byte per synapse) per core, {LOIHI2.cores_per_chip} cores per chip"),
        "core_limits_source": LOIHI2.source,
        "file_bytes": file_bytes,
        "verified": (f"lava: {lava['samples']} samples x {lava['steps']} steps, every layer's spikes bit-exact"
                     if lava else "no (pass --verify lava to run the file in Lava)"),
    })
    counters = evaluation.counters if evaluation is not None else [None] * len(graph.nodes)
    for i, (quant, layer, count, n) in enumerate(zip(quantized.layers, graph.nodes, counters, cores), 1):
        report[f"layer {i}"] = _layer_line(quant, layer, n, count)
    report["layers"] = [
        {**quant.to_dict(), "loihi2_cores": n, **({"simulated": vars(count)} if count is not None else {})}
        for quant, count, n in zip(quantized.layers, counters, cores)
    ]
    report["limits"] = LOIHI2.to_dict()
    if evaluation is not None:
        report["seconds_simulator"] = round(evaluation.seconds_simulator, 3)
    if lava:
        report["lava"] = lava
    return report


@register_exporter("loihi", ".net.h5", LoihiOptions)
def export_loihi(request: ExportRequest) -> ExportResult:
    """Quantize, simulate, gate, write and (optionally) verify; see the module docstring."""
    options = request.options or LoihiOptions()
    if options.input_bits is not None and request.encoding != "direct":
        raise ExportError(f"--input-bits sets the graded input of a direct-coded model; this one takes "
                          f"{request.encoding}-coded spikes (one bit)")
    input_bits = (options.input_bits or DEFAULT_INPUT_BITS) if request.encoding == "direct" else 0
    python = lava_python(options.lava_python) if options.verify == "lava" else None
    first = next(iter(request.batches()), None) if request.batches is not None else None
    calibration = (lambda folded: _readout_range(folded, first[0])) if first is not None else None
    quantized = quantize_model(request.model.eval(), tuple(request.input_shape), request.timesteps, calibration,
                               input_bits=input_bits, calibration_input=first[0][:1] if first is not None else None)
    graph = quantized.graph
    simulator = LoihiSimulator(graph)
    evaluation = None
    if first is not None:
        evaluation = evaluate(request.model, simulator,
                              progress.bar(request.batches(), desc="float vs Loihi fixed point", unit="batch"))
        check_overflow(graph, evaluation.counters)
        if evaluation.drop_pt > options.max_drop + 1e-9:
            raise AccuracyDropError(
                f"accuracy drops from {evaluation.float_accuracy:.2%} (float) to {evaluation.fixed_accuracy:.2%} (Loihi "
                f"fixed point) on {evaluation.samples} test samples, {evaluation.drop_pt:.2f} pt > --max-drop "
                f"{options.max_drop:g}; nothing was written: retrain with --quantize loihi, or allow it with --max-drop"
            )
    out = Path(request.out)
    attrs = {**request.metadata, "snnpipe_version": __version__, "timesteps": request.timesteps,
             "encoding": request.encoding, "steps": graph.steps_for(request.timesteps)}
    lava = None
    with atomic_path(out) as tmp:
        if quantized.network is not None:
            write_netx(quantized.network, tmp, attrs)
        else:
            write_graph(graph, tmp, attrs)
        if python is not None:
            if first is not None:
                x = first[0][:, :options.verify_samples].float()
            else:
                x = (torch.rand(request.timesteps, options.verify_samples, *request.input_shape,
                                generator=torch.Generator().manual_seed(0)) < 0.3).float()
            with progress.bar(total=1, desc="verify in Lava", unit="run") as bar:
                lava = verify_with_lava(tmp, simulator, x, python)
                bar.update(1)
        file_bytes = tmp.stat().st_size
    report = build_report(quantized, evaluation, request, options.max_drop, file_bytes, lava)
    return ExportResult("loihi", out, report)
