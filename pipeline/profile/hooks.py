"""The `Recorder`: what a model does during one batch, checked against the contract and added to
the accumulating metrics.

It sees two things:

- **every torch function call** while the model runs (a ``TorchFunctionMode``): the synaptic ops
  and average poolings of `counting` (``F.linear``, ``F.conv2d`` ... whether a module or your code
  calls them), and the contractions it does not count (``matmul``, ``einsum``, ``bilinear``,
  ``embedding``, recurrent cells ...), which are refused when they read a weight of the model;
  not inside a neuron layer without weights or a norm, flatten or dropout module, where no synapse
  can run and where interception would cost more than the elementwise ops it sees;
- **the neuron layers** of every framework in `frameworks`, by forward hooks.

A module that holds weights (a parameter with two dimensions above 1) and runs without a counted op
(an ``nn.LSTM``, a layer type the profiler does not know) is refused too: nothing with weights
falls through uncounted.

Calls per batch (T steps, B samples; "rows" are the input's leading dimensions, batch and time):
a synaptic layer runs once per step on B rows, or on k steps at once (k x B rows), or exactly once
on B rows: before the first neuron step that is a static input (the zoo's stem under direct
encoding), counted at every step; after the last neuron step it is a readout of the time loop,
counted once (at the last step). A neuron layer covers T steps in all. Anything else is a
`ProfileError` naming the layer.
"""

from __future__ import annotations

import sys
from contextlib import contextmanager
from typing import Any, Iterator

import torch
from torch import Tensor, nn
from torch.nn.utils.parametrize import ParametrizationList
from torch.nn.utils.spectral_norm import SpectralNorm
from torch.nn.utils.weight_norm import WeightNorm
from torch.overrides import TorchFunctionMode

from snnpipe.models.neurons import Neuron
from snnpipe.pipeline.profile.counting import (
    POOL_OPS, SYNAPTIC_OPS, SpikeSource, SynapticCall, SynapticCounts, SynapticOp, is_zero_one, pool_divisor,
    sample_sums, split_args, windows_per_element,
)
from snnpipe.pipeline.profile.frameworks import NeuronFramework, neuron_layers
from snnpipe.pipeline.profile.metrics import NeuronActivity, SynapticOperations
from snnpipe.pipeline.profile.schema import ProfileError

#: Contractions the profiler does not count (by function name, torch.* and Tensor.* alike): a call
#: of one on a weight of the model is refused.
UNCOUNTED_CONTRACTIONS = frozenset({
    "matmul", "__matmul__", "__rmatmul__", "mm", "bmm", "mv", "dot", "vdot", "inner", "outer", "ger",
    "addmm", "addmm_", "baddbmm", "addbmm", "addmv", "addr", "einsum", "tensordot", "chain_matmul", "multi_dot",
    "bilinear", "embedding", "embedding_bag", "conv_tbc", "multi_head_attention_forward",
    "lstm", "gru", "rnn_tanh", "rnn_relu", "lstm_cell", "gru_cell", "rnn_tanh_cell", "rnn_relu_cell",
})
#: Modules whose weights scale activations elementwise: not synapses.
_NORMS = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm, nn.LocalResponseNorm)
#: Modules that only reshape or scale their input elementwise: no synapse runs in them (see `_mute`).
_ELEMENTWISE = (*_NORMS, nn.Flatten, nn.Unflatten, nn.Identity, nn.modules.dropout._DropoutNd)
#: The forward pre-hooks of the old ``nn.utils.weight_norm`` and ``nn.utils.spectral_norm``: they compute
#: the module's effective weight (see `_weights`).
_WEIGHT_HOOKS = (WeightNorm, SpectralNorm)
#: Module types named as such in a report; any other caller of a synaptic op is named by its weight.
_SYNAPSE_MODULES = (nn.Linear, nn.modules.conv._ConvNd)


def _is_weight(p: Tensor) -> bool:
    return sum(size > 1 for size in p.shape) >= 2


def _weights(module: nn.Module) -> list[str]:
    """The names of the weights ``module`` runs: its own matrices, and those a parametrization
    computes for it (``parametrizations.weight_norm``: ``weight`` from ``original0`` and ``original1``).
    A parametrization only computes the tensor (``g v / |v|``; ``spectral_norm``'s power iteration),
    which the module then multiplies by as its weight: the module's call is counted with that
    effective weight, as a plain layer holding it would be, and the parametrization runs outside the
    interception (`_mute`), as no synapse runs in it. The old ``nn.utils.weight_norm`` and
    ``nn.utils.spectral_norm`` keep ``weight_g`` and ``weight_v``, or ``weight_orig``, on the module and
    compute ``weight`` in a forward pre-hook (`_WEIGHT_HOOKS`; spectral_norm's ``mv`` power iteration):
    the same."""
    own = [n for n, p in module.named_parameters(recurse=False) if _is_weight(p)]
    computed = getattr(module, "parametrizations", {})
    return own + [n for n, chain in computed.items() if any(_is_weight(p) for p in chain.parameters())]


class _Interceptor(TorchFunctionMode):
    """Hands every torch function call of the model to its `Recorder` (inside it, torch calls are
    not intercepted again)."""

    def __init__(self, recorder: "Recorder") -> None:
        super().__init__()
        self.recorder = recorder

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        rec = self.recorder
        if rec.busy:
            return out
        op = SYNAPTIC_OPS.get(func)
        if op is not None:
            with rec.working():
                rec.synapse(op, args, kwargs, out)
        elif func in POOL_OPS:
            with rec.working():
                rec.pool(func, args, kwargs, out)
        elif getattr(func, "__name__", "") in UNCOUNTED_CONTRACTIONS:
            rec.refuse_contraction(func.__name__, args, kwargs)
        return out


class Recorder:
    """Counts one model's synaptic ops and neuron layers, batch by batch (module docstring).

    Args:
        model: the network.
        timesteps: T, the steps of every batch.
        ann: a layer of the ANN twin: every synaptic op a MAC.
    """

    def __init__(self, model: nn.Module, timesteps: int, ann: bool) -> None:
        self.timesteps, self.ann = timesteps, ann
        root = type(model).__name__
        named = [(name or root, m) for name, m in model.named_modules()]
        self.modules = dict(named)
        self.neurons = neuron_layers(model)
        # a sequence flattened to rows is time-major unless the model's neurons are batch-major (Sinabs)
        self.layout = "batch" if any(f.layout(m) == "batch" for m, f in self.neurons.values()) else "time"
        self.param_names = {id(p): (name, p) for name, p in model.named_parameters()}
        self.weighted = {name: _weights(m) for name, m in named
                         if name not in self.neurons and not isinstance(m, (*_NORMS, ParametrizationList))}
        self.weighted = {name: params for name, params in self.weighted.items() if params}
        self.order: dict[str, int] = {}  # layer -> when it first ran: the report's order
        self.types: dict[str, str] = {}  # layer -> its module type, or F.<op> for a function call
        self.counters: dict[str, SynapticCounts] = {}
        self.divisors: dict[tuple, tuple[Tensor, bool]] = {}
        self.synops, self.activity = SynapticOperations(timesteps), NeuronActivity(timesteps)
        for name, (module, _) in self.neurons.items():  # every neuron layer starts at zero
            self.activity.update(name, [], 0, 0)
            self.types[name] = type(module).__name__
        self.stack: list[list] = []  # [module name, whether a counted op ran in it]
        self.muted: list[bool] = []  # per muted module running (`_mute`): whether it took the mode off the stack
        self.busy = False
        self.handles = []
        for name, module in named:
            self.handles.append(module.register_forward_pre_hook(self._enter(name)))
            self.handles.append(module.register_forward_hook(self._leave(name), always_call=True))
            if name in self.neurons:
                self.handles.append(module.register_forward_hook(self._neuron_hook(name, *self.neurons[name])))
            held = [*module.parameters(), *module.buffers()]  # a matrix, even a buffer, could be a synapse's
            computes_weight = isinstance(module, ParametrizationList)  # (`_weights`)
            if computes_weight or (name in self.neurons or isinstance(module, _ELEMENTWISE)) and not any(
                    _is_weight(t) for t in held):
                self.handles.append(module.register_forward_pre_hook(self._mute))
                self.handles.append(module.register_forward_hook(self._unmute, always_call=True))
            if any(isinstance(hook, _WEIGHT_HOOKS) for hook in module._forward_pre_hooks.values()):
                # muted from before the first of the module's pre-hooks (theirs) to after the last (ours)
                self.handles.append(module.register_forward_pre_hook(self._mute, prepend=True))
                self.handles.append(module.register_forward_pre_hook(lambda m, inputs: self._unmute(m, inputs, None)))
            if isinstance(module, Neuron):
                module.last_count = None  # not a count of ours (see the hook)
        self.mode = _Interceptor(self)
        self.start_batch(0)

    @contextmanager
    def working(self) -> Iterator[None]:
        """The profiler's own tensor work: not part of the model's."""
        self.busy = True
        try:
            yield
        finally:
            self.busy = False

    @contextmanager
    def intercept(self) -> Iterator[None]:
        with self.mode:
            yield

    def start_batch(self, batch_size: int, x: Tensor | None = None) -> None:
        """Stage the calls of a new batch; x, the batch's (T, B, ...) input, is a spike source
        when it is all 0 and 1 (rate coding): its steps need no check of their values; else each
        sample's step is spikes only where it is all 0 and 1 (`SpikeSource.network_input`)."""
        self.batch_size = batch_size
        self.tick = 0  # the order of counted calls within the batch
        self.staged_synapses: dict[str, list[tuple[int, int, list[SynapticCall]]]] = {}
        self.staged_neurons: dict[str, list[tuple]] = {}  # (tick, steps, counts, active, size, states, per-sample spikes, active)
        # layer -> its latest output, when that is spikes. Holding the tensor keeps its memory from
        # being reused, so a data pointer that matches (and an unchanged version) is that tensor or a
        # view of it (a Flatten), and the check of its values can be skipped.
        self.spike_sources: dict[Any, SpikeSource] = {}
        self.input_steps: dict[int, SpikeSource] = {}  # data pointer -> a step of the input (held by the caller)
        if x is not None and x.numel():
            analog = not is_zero_one(x)  # one step, for a static input
            self.input_steps = {x_t.data_ptr(): SpikeSource(x_t, network_input=analog) for x_t in x}

    def _source(self, x: Tensor) -> SpikeSource | None:
        step = self.input_steps.get(x.data_ptr())
        if step is not None and step.holds(x):
            return step
        return next((source for source in self.spike_sources.values() if source.holds(x)), None)

    def _seen(self, name: str) -> int:
        if name not in self.order:
            self.order[name] = len(self.order)
        self.tick += 1
        return self.tick

    # --- modules ------------------------------------------------------------------------------------

    def _mute(self, module: nn.Module, inputs: Any) -> None:
        # A neuron layer without weights (or a norm, a flatten ...) has no synapse to count, and the
        # neurons' elementwise steps are most of the torch calls of a forward pass: each intercepted
        # costs more than the op itself at these sizes (the convnet's 352 calls a batch made the
        # profile 13% slower by themselves), so the mode is off the stack while such a module runs.
        top = torch._C._len_torch_function_stack()
        muted = top > 0 and torch._C._get_function_stack_at(top - 1) is self.mode
        if muted:
            torch._C._pop_torch_function_stack()
        self.muted.append(muted)

    def _unmute(self, module: nn.Module, inputs: Any, output: Any) -> None:
        if self.muted and self.muted.pop():
            torch._C._push_on_torch_function_stack(self.mode)

    def _enter(self, name: str):
        def hook(module, inputs):
            self.stack.append([name, False])

        return hook

    def _leave(self, name: str):
        def hook(module, inputs, output):
            _, counted = self.stack.pop() if self.stack else (name, True)
            if counted and self.stack:
                self.stack[-1][1] = True
            if name in self.weighted and not counted and sys.exc_info()[0] is None:  # not while forward fails
                raise ProfileError(
                    f"layer {name} ({type(module).__name__}) has weights ({', '.join(self.weighted[name])}) that the "
                    "profiler does not count: build it from nn.Linear / nn.Conv*d / nn.ConvTranspose*d (or F.linear, "
                    "F.conv*d) and spiking neurons")

        return hook

    def _steps(self, name: str, rows: int, what: str) -> int:
        """Timesteps in a call of ``rows`` rows: k for k x B rows, 1 <= k <= T (one step, a part of
        the sequence, all of it); else an error."""
        B, T = self.batch_size, self.timesteps
        if B and rows % B == 0 and 1 <= rows // B <= T:
            return rows // B
        raise ProfileError(
            f"{what} {name} ran on {rows} rows in a batch of B={B} samples and T={T} steps; call it on one step "
            "(B, ...) or on steps of the sequence (T, B, ...): see the contract in snnpipe.pipeline.profile")

    # --- synaptic ops and pooling --------------------------------------------------------------------

    def _layer(self, op: SynapticOp, weight: Tensor) -> tuple[str, str]:
        """(name, type) of the layer a call belongs to: the synaptic module that runs it, else the
        weight's parameter path (``F.linear(s, self.w)``: ``w``), else the calling module + op."""
        caller = self.stack[-1][0] if self.stack else next(iter(self.modules))
        module = self.modules[caller]
        if isinstance(module, _SYNAPSE_MODULES):
            return caller, type(module).__name__
        param = self.param_names.get(id(weight))
        if param is not None and param[1] is weight:
            return param[0], f"F.{op.name}"
        return f"{caller}.{op.name}", f"F.{op.name}"

    def synapse(self, op: SynapticOp, args: tuple, kwargs: dict, out: Tensor) -> None:
        (x, weight, bias), rest, extra = split_args(args, kwargs, ("input", "weight", "bias"))
        name, kind = self._layer(op, weight)
        if self.stack:
            self.stack[-1][1] = True
        counter = self.counters.get(name)
        if counter is None:
            counter = self.counters[name] = SynapticCounts(op, weight, rest, extra, bias)
            self.types[name] = kind
            self.synops.update(name, [])
        tick = self._seen(name)
        x = x.detach()
        features = x.shape[max(x.dim() - op.feature_dims, 0):].numel()
        steps = self._steps(name, x.numel() // features if features else 0, "layer")
        calls = counter.reduce(x, out.detach(), self._source(x), steps, self.layout)
        self.staged_synapses.setdefault(name, []).append((tick, steps, calls))

    def pool(self, func, args: tuple, kwargs: dict, out: Tensor) -> None:
        """Average pooling of spikes (or spike counts): its output becomes an event source."""
        (x,), rest, extra = split_args(args, kwargs, ("input",))
        x = x.detach()
        source = self._source(x)
        # one key per pooling: what it pools (a neuron layer's spikes, or else a shape) where it runs, so
        # that two poolings in one forward pass, or in your loop, do not take each other's place
        pooled = next((k for k, s in self.spike_sources.items() if s is source), tuple(x.shape)) if source else tuple(x.shape)
        key = (self.stack[-1][0] if self.stack else "", func.__name__, pooled)
        self.spike_sources.pop(key, None)
        if self.ann:  # before the value test: the ANN twin's pooling is never spikes
            return
        counts = source is not None and source.divisor is not None and source.divisor.dim() == 0
        spikes = source is not None and not source.network_input and (source.divisor is None or counts)
        if not (spikes or is_zero_one(x)):
            return
        dims = int(func.__name__[-2]) + 1  # channels and the pooled dimensions: one sample
        shape = tuple(x.shape[x.dim() - dims:])
        if (key, shape) not in self.divisors:  # one value per element of one output, flat
            module = POOL_OPS[func](*rest, **extra)
            divisor = pool_divisor(module, shape, x.device)
            # the pooling of ones bounds that of spikes: where it is <= 1 (no sum pooling) so is every value
            ones = torch.ones((1, 1, *shape[1:]), dtype=torch.float64)
            out_shape = tuple(out.shape[out.dim() - dims:])
            overlapping = bool(windows_per_element(module, shape).max() > 1)
            self.divisors[key, shape] = (divisor.expand(out_shape).flatten(), bool(module.forward(ones).max() > 1),
                                         module if overlapping else None)
        divisor, may_exceed_one, folded = self.divisors[key, shape]
        # overlapping windows: the next layer counts the spikes before the pooling (`SpikeSource.unpooled`)
        self.spike_sources[key] = SpikeSource(out.detach(), divisor, may_exceed_one or counts,
                                              unpooled=None if folded is None else x, pool=folded, unpooled_shape=shape)

    def refuse_contraction(self, op: str, args: tuple, kwargs: dict) -> None:
        flat = [*args, *kwargs.values()]
        flat += [t for a in flat if isinstance(a, (list, tuple)) for t in a]
        for t in flat:
            if isinstance(t, Tensor):
                param = self.param_names.get(id(t)) or self.param_names.get(id(t._base))
                if param is not None and _is_weight(param[1]):
                    caller = self.stack[-1][0] if self.stack else next(iter(self.modules))
                    raise ProfileError(
                        f"{caller} calls {op} on the weight {param[0]}, which the profiler does not count: use "
                        "nn.Linear / F.linear or a conv for synapses")

    # --- neurons ------------------------------------------------------------------------------------

    def _neuron_hook(self, name: str, module: nn.Module, framework: NeuronFramework):
        kind = framework.output(module)
        layout = framework.layout(module)

        def hook(module, inputs, output):
            with self.working():
                tick = self._seen(name)
                spikes = framework.spikes(output).detach()
                steps = self._steps(name, self._neuron_rows(spikes, layout), "neuron layer") if layout else 1
                own = getattr(module, "last_count", None)  # an snnpipe neuron counted this step per sample itself
                if own is not None:
                    module.last_count = None
                if own is not None and steps == 1 and kind == "spikes" and own.numel() == max(self.batch_size, 1):
                    sample_spikes = own.to(torch.float32)
                    counts = [sample_spikes.sum()] if spikes.numel() < 2**24 else self._spike_counts(module, spikes, 1, layout, kind)
                else:
                    sample_spikes = self._per_sample(spikes, steps, layout, kind != "values")
                    counts = self._spike_counts(module, spikes, steps, layout, kind)
                # active neurons: nonzero outputs, fewer than the spikes where a neuron emits several
                active = self._spike_counts(module, spikes, steps, layout, "values") if kind == "counts" else counts
                if kind == "spikes":
                    self.spike_sources[name] = SpikeSource(spikes)
                elif kind == "counts":  # integer spike counts: events, divisor 1
                    self.spike_sources[name] = SpikeSource(spikes, torch.ones((), dtype=torch.float64), True)
                per_sample = spikes.numel() // max(steps * self.batch_size, 1)
                sample_active = sample_spikes if kind == "spikes" else self._per_sample(spikes, steps, layout, False)
                self.staged_neurons.setdefault(name, []).append(
                    (tick, steps, counts, active, per_sample, framework.state_variables(module, output),
                     sample_spikes, sample_active))

        return hook

    def _neuron_rows(self, spikes: Tensor, layout: str) -> int:
        """Rows of a sequence-layout output: T x B when it is (T, B, ...), (B, T, ...) or flat."""
        B, T = self.batch_size, self.timesteps
        lead = tuple(spikes.shape[:2])
        return T * B if lead == ((T, B) if layout == "time" else (B, T)) else spikes.shape[0]

    def _spike_counts(self, module: nn.Module, spikes: Tensor, steps: int, layout: str | None, kind: str) -> list[Tensor]:
        """Spikes per step of one call (0-dim tensors): nonzero outputs, or the sum of spike counts."""
        if steps == 1:
            return [self._count(spikes, kind)]
        if layout == "time":
            return [self._count(row, kind) for row in spikes.reshape(steps, -1)]
        grid = spikes.reshape(self.batch_size, steps, -1)
        return [self._count(grid[:, t], kind) for t in range(steps)]

    def _per_sample(self, spikes: Tensor, steps: int, layout: str | None, summed: bool) -> Tensor:
        """Per sample, over the steps of one call: the sum of the outputs (spikes, spike counts), or
        with ``summed`` False the nonzero outputs."""
        B = max(self.batch_size, 1)
        grid = spikes.reshape(B, steps, -1) if layout == "batch" and steps > 1 else spikes.reshape(steps, B, -1)
        values = grid if summed else grid != 0
        return values.sum(dim=(1, 2) if layout == "batch" and steps > 1 else (0, 2), dtype=torch.float32)

    @staticmethod
    def _count(values: Tensor, kind: str) -> Tensor:
        # a float sum of 0/1 is exact below 2**24 and many times faster than count_nonzero
        if kind == "counts" or kind == "spikes" and values.numel() < 2**24:
            return values.sum()
        return torch.count_nonzero(values)

    # --- the batch --------------------------------------------------------------------------------

    def finish_batch(self) -> None:
        """Check the calls of this batch against the contract and add them to the metrics."""
        T = self.timesteps
        neuron_ticks = [tick for calls in self.staged_neurons.values() for tick, *_ in calls]
        for name, calls in self.staged_synapses.items():
            counter = self.counters[name]
            steps = sum(s for _, s, _ in calls)
            if steps == T:
                per_step = counter.counts([c for *_, step_calls in calls for c in step_calls], self.ann)
            elif len(calls) == 1 and steps == 1 and (not neuron_ticks or calls[0][0] < min(neuron_ticks)):
                # a static input, computed once: counted at every step
                per_step = counter.counts(calls[0][2], self.ann) * T
            elif len(calls) == 1 and steps == 1 and calls[0][0] > max(neuron_ticks):
                # a readout of the time loop: counted once
                per_step = [dict.fromkeys(SynapticCounts.FIELDS, 0.0)] * (T - 1) + counter.counts(calls[0][2], self.ann)
            else:
                raise ProfileError(
                    f"layer {name} ran {len(calls)} times ({steps} steps) in a batch of T={T} steps; the profiler needs "
                    "one call per timestep, one on the whole sequence, or one on a static (B, ...) input before the "
                    "loop or a readout after it: see the contract in snnpipe.pipeline.profile")
            self.synops.update(name, per_step)
            self.synops.update_samples(name, **sample_sums(per_step, self.batch_size))
        for name, calls in self.staged_neurons.items():
            steps = sum(s for _, s, *_ in calls)
            if steps != T:
                raise ProfileError(
                    f"neuron layer {name} ran {len(calls)} times ({steps} steps) in a batch of T={T} steps; call it "
                    "once per timestep (or once on the whole sequence) and reset its state for each batch: see the "
                    "contract in snnpipe.pipeline.profile")
            counts = torch.stack([c for _, _, step_counts, *_ in calls for c in step_counts]).tolist()
            active = torch.stack([c for _, _, _, step_active, *_ in calls for c in step_active]).tolist()
            *_, per_sample, states, _, _ = calls[-1]
            self.activity.update(name, counts, per_sample, per_sample * states, active)
            self.activity.update_samples(name, spikes=sum(c[6] for c in calls), active=sum(c[7] for c in calls))
        self.start_batch(0)

    def close(self) -> None:
        for handle in self.handles:
            handle.remove()
