"""The counting engine: what one call of a synaptic operation costs (SPEC §5).

**Synaptic operations** are torch functions, a table of `SynapticOp`: ``linear``, ``conv1d/2d/3d``
and ``conv_transpose1d/2d/3d``, whether a module (``nn.Linear``, ``nn.Conv2d``, SpikingJelly's
``layer.Conv2d`` ...) or your own code (``F.linear(s, w)``) calls them. For each call, with x its
input and W its weight:

- ``acs`` (accumulates) = sum over the spike events reaching the layer of their fan-out, the number
  of outputs an input element reaches through nonzero weights. The fan-out is exact at the borders
  (a corner pixel of a padded 3x3 conv reaches 4 outputs, not 9): it is the gradient
  ``d sum(op(x, [W != 0])) / dx``, computed once per layer and input shape, so
  ``sum_i [x_i != 0] * fanout_i`` equals NeuroBench's replay of the layer on binarized input and
  weights (``Effective_ACs``) without replaying it.
- ``macs`` (multiply-accumulates), for graded input (the first layer under direct encoding, and
  every layer of the ANN twin): the dense count, output elements x fan-in
  (``W[0].numel()``), the padded window included (SPEC §5: 3x64x9 x 32x32 for ResNet-18's stem);
  for a transposed conv, input elements x ``W[0].numel()`` (every input element meets its kernel).
- **Spike events or graded input: one rule, sample by sample.** Input known to be spikes is events:
  a neuron layer's output (0/1, or Sinabs' integer spike counts), its average pooling, a network
  input of 0 and 1. The network's own input (and a Loihi graph's graded input) is spikes where a
  sample's step is all 0 and 1, else graded (raw pixels are not spike counts). Any other input
  (``s1 + s2``, spikes scaled in place) is judged by its values, each row (one sample at one step) by
  itself: a row of integers is spike counts, an element holding k is |k| events (a 2 of ``s1 + s2``
  is two events, as a 2 of Sinabs' counts is); a row holding any other value is graded, all its
  outputs dense MACs. A sample's counts do not depend on the samples that share its batch
  (NeuroBench's effective ops, below, test the whole batch, as NeuroBench does).
- Average pooling of spikes (`POOL_OPS`: ``avg_pool1d/2d/3d``, ``adaptive_avg_pool1d/2d/3d``, from
  a module or ``F.``) folds into the next synaptic layer, as on Loihi (SPEC §4): every spike in a
  window is one event with the fan-out of its pooled pixel, ``acs = sum_j k_j * fanout_j`` with
  ``k_j = pooled_j * divisor_j`` the spikes in window j. Integer spike counts (Sinabs' MultiSpike)
  are events the same way, with divisor 1. Where the windows overlap (``AvgPool2d(3, stride=1)``) a
  spike lies in several windows, and several may lead to one output: the layer then counts the
  pooling's input, each spike one event reaching each output of the folded layer once,
  ``acs = sum_i s_i * folded_i`` with ``folded_i`` the outputs of ``op(pool(e_i), [W != 0])``
  (`SynapticCounts.folded_fanout`: one-hot probes, once per layer and shape), the synapses the
  Loihi fold holds.
- NeuroBench's own definitions beside them: ``effective_acs`` / ``effective_macs`` (nonzero inputs x
  fan-out, for input that is / is not all in {0, 1, -1}) and ``dense`` (every input, every weight,
  exact at the borders).
- ``input_events``: the spike events reaching the layer (|k| for an element holding k; every spike
  in a pooling window is one; none for graded input), what the memory-aware energy model addresses
  and fetches weights for.
- Per sample (for standard errors): each call's ACs and input events of every row, ``rows @
  fanout`` and ``rows.sum(1)``, the same numbers before the sum over the batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from snnpipe.registry import register_into


#: Values a test of a whole tensor looks at first, on a CPU: analog input fails on them at once.
_HEAD = 4096
#: The same for each row of a test per sample.
_ROW_HEAD = 64


def is_binary(x: Tensor) -> Tensor:
    """NeuroBench's test for spikes: every value is 0, 1 or -1 (a 0-dim bool tensor: no synchronisation
    on a GPU; on a CPU the first values decide alone when they are not)."""
    if x.device.type == "cpu" and x.numel() > _HEAD:
        head = x.reshape(-1)[:_HEAD]
        if not bool(((head == 0) | (head.abs() == 1)).all()):
            return torch.zeros((), dtype=torch.bool)
    return ((x == 0) | (x.abs() == 1)).all()


def integer_rows(flat: Tensor) -> Tensor:
    """Per row of ``flat`` (rows, n): whether every value is an integer, i.e. a count of spike events
    (-1, 0 and 1 among them; NaN and inf are not)."""
    if not flat.is_floating_point():
        return torch.ones(flat.shape[0], dtype=torch.bool, device=flat.device)
    return _rows_without(flat, lambda t: torch.frac(t).ne(0))


def zero_one_rows(flat: Tensor) -> Tensor:
    """Per row of ``flat`` (rows, n): whether every value is 0 or 1 (x - x^2 = 0, see `is_zero_one`)."""
    return _rows_without(flat, lambda t: torch.addcmul(t, t, t, value=-1).ne(0))


def _rows_without(flat: Tensor, breaks: Callable[[Tensor], Tensor]) -> Tensor:
    # on a CPU each row's first values first: analog input breaks the rule on them at once
    if flat.device.type == "cpu" and flat.shape[1] > _ROW_HEAD:
        broken = breaks(flat[:, :_ROW_HEAD]).any(1)
        if bool(broken.all()):
            return ~broken
    return ~breaks(flat).any(1)


def is_zero_one(x: Tensor) -> bool:
    """Whether every value is 0 or 1 (the first values first: analog input fails on them at once).

    x - x^2 is 0 exactly at 0 and 1 (no other float squares to itself; NaN and inf give NaN; in k-bit
    integers x and 1 - x are coprime, so neither wraps to a multiple of 2^k), one pass, faster here
    than comparing x with ``x.bool()``."""
    def zero_one(t: Tensor) -> bool:
        return not bool(torch.addcmul(t, t, t, value=-1).any())

    return x.dtype == torch.bool or zero_one(x.reshape(-1)[:_HEAD]) and zero_one(x)


# --- the tables: which torch functions are synapses, which are pooling ------------------------------

@dataclass(frozen=True)
class SynapticOp:
    """A torch function whose every call the profiler counts.

    Attributes:
        name: the function's name, ``F.<name>`` in reports for a call outside a synaptic module.
        function: the function, as a module or your code calls it (``F.linear`` ...).
        feature_dims: dimensions of one sample's input (1 for linear, N + 1 for an N-d conv); the
            dimensions before them are rows: the batch, or the time steps and the batch.
        transposed: MACs per input element (a transposed conv) instead of per output element.
    """

    name: str
    function: Callable
    feature_dims: int
    transposed: bool = False


SYNAPTIC_OPS: dict[Callable, SynapticOp] = {}


def register_synaptic_op(op: SynapticOp) -> SynapticOp:
    """Add a function to count; refuses one already registered."""
    return register_into(SYNAPTIC_OPS, op.function, "synaptic op")(op)


register_synaptic_op(SynapticOp("linear", F.linear, 1))
for _n in (1, 2, 3):
    register_synaptic_op(SynapticOp(f"conv{_n}d", getattr(F, f"conv{_n}d"), _n + 1))
    register_synaptic_op(SynapticOp(f"conv_transpose{_n}d", getattr(F, f"conv_transpose{_n}d"), _n + 1, transposed=True))

#: Average pooling function -> the module with the same arguments (in the same order), which
#: `pool_divisor` reads: a call ``F.avg_pool2d(x, *args)`` pools as ``nn.AvgPool2d(*args)`` does.
POOL_OPS: dict[Callable, type[nn.Module]] = {
    F.avg_pool1d: nn.AvgPool1d, F.avg_pool2d: nn.AvgPool2d, F.avg_pool3d: nn.AvgPool3d,
    F.adaptive_avg_pool1d: nn.AdaptiveAvgPool1d, F.adaptive_avg_pool2d: nn.AdaptiveAvgPool2d,
    F.adaptive_avg_pool3d: nn.AdaptiveAvgPool3d,
}


def split_args(args: tuple, kwargs: dict, names: tuple[str, ...]) -> tuple[list[Any], tuple, dict]:
    """A torch function's leading arguments called ``names`` (positional or keyword), and the rest."""
    args, kwargs = list(args), dict(kwargs)
    head = [args.pop(0) if args else kwargs.pop(name, None) for name in names]
    return head, tuple(args), kwargs


# --- spike sources --------------------------------------------------------------------------------

@dataclass
class SpikeSource:
    """A layer's output known to be spikes: 0/1 (``divisor`` None) or spike events per position,
    ``tensor * divisor`` (average-pooled spikes, or integer spike counts with divisor 1).
    ``network_input``: the network's own input that is not all 0 and 1 (or a Loihi graph's graded
    input), judged by value row by row, where only 0 and 1 are spikes (raw pixels are not spike
    counts). ``unpooled`` and ``pool``: for an overlapping average pooling, its input (spikes or
    counts) and the pooling, which the next layer folds in (`SynapticCounts.folded_fanout`). For
    events, `reduce` sums it over its first (batch) dimension once for every layer it feeds:
    ``nonzero`` (nonzero values per position), ``peak`` (its largest value, where a value can
    exceed 1) and, where asked, ``spikes`` (its values per position). ``version``: the tensor's
    in-place version when it was recorded; an in-place change (``s.mul_(0.5)``) makes it no longer
    a source."""

    tensor: Tensor
    divisor: Tensor | None = None
    may_exceed_one: bool = False  # events: whether a value can be above 1 (a sum pooling, counts)
    network_input: bool = False  # judged by value, a row spikes only if all 0 and 1 (not spike counts)
    unpooled: Tensor | None = None  # an overlapping pooling's input: the spikes the next layer counts
    pool: nn.Module | None = None  # that pooling
    unpooled_shape: tuple[int, ...] = ()  # one sample of its input
    spikes: Tensor | None = None
    nonzero: Tensor | None = None
    peak: Tensor | None = None
    version: int = -1

    def __post_init__(self) -> None:
        if self.version < 0:
            self.version = self.tensor._version

    @property
    def kind(self) -> str:
        return "spikes" if self.divisor is None else "events"

    def holds(self, x: Tensor) -> bool:
        """x is this tensor or a view of it, unchanged since (see `Recorder.start_batch`)."""
        return (x.data_ptr() == self.tensor.data_ptr() and x.numel() == self.tensor.numel()
                and x._version == self.version)

    def reduce(self, rows: Tensor, sums: bool = True, scratch: Callable[[Tensor], Tensor] | None = None) -> "SpikeSource":
        """Its sums over the rows for ``rows``, a view of the tensor with the batch first (``spikes``
        only where ``sums``): from this source when both are contiguous with the same first dimension
        (they split the memory alike), else from a new source of the rows alone (a step of a
        batch-major sequence is not contiguous). ``scratch(t)``: a tensor like t to write into."""
        same = rows.shape[0] == self.tensor.shape[0] and rows.is_contiguous() and self.tensor.is_contiguous()
        source = self if same else SpikeSource(rows, self.divisor, self.may_exceed_one)
        if source.nonzero is None:  # events are >= 0, so their signs count the nonzero ones
            t = source.tensor
            signs = (t.sign() if scratch is None else torch.sign(t, out=scratch(t))).reshape(t.shape[0], -1)
            if signs.dtype not in (torch.float32, torch.float64):  # half and bfloat16 count to 2048 and 256
                signs = signs.to(torch.float32)
            # a sum over the rows as a product with ones: about 2x faster here than .sum(0) (py-spy)
            source.nonzero = torch.mv(signs.t(), signs.new_ones(signs.shape[0]))
            source.peak = source.tensor.amax() if source.may_exceed_one else None
        if sums and source.spikes is None:
            source.spikes = source.tensor.sum(0, dtype=torch.float64).flatten()
        return source


# --- one synaptic layer -----------------------------------------------------------------------------

@dataclass
class SynapticCall:
    """One timestep of a synaptic layer, reduced with no synchronisation to what
    `SynapticCounts.counts` needs: ``sample_acs`` and ``sample_events``, per row (sample), and
    for ``"events"`` input its sums over the rows per position, flat: ``nonzero`` (nonzero inputs),
    ``spikes`` (values, before the divisor; only where the rows' sums are not exact, see
    `SynapticCounts._per_row`), ``peak`` (its largest value) and ``pool_divisor``; for
    ``"other"`` input (judged by value) ``binary`` (NeuroBench's value test of the whole batch),
    ``effective`` (its effective ops) and ``integer`` (per row: spike counts, else graded: MACs).
    ``mac_elements``: elements the dense MACs count per fan-in."""

    source: str
    rows: int
    mac_elements: int
    shape: tuple[int, ...]
    nonzero: Tensor | None = None
    spikes: Tensor | None = None
    peak: Tensor | None = None
    binary: Tensor | None = None
    effective: Tensor | None = None
    integer: Tensor | None = None
    pool_divisor: Tensor | None = None
    window_events: Tensor | None = None
    sample_events: Tensor | None = None
    sample_acs: Tensor | None = None


class SynapticCounts:
    """The operations of one synaptic layer (a weight used by one `SynapticOp`), per call; it caches
    the layer's fan-outs.

    ``reduce(x, y, source, steps, layout)`` runs when the op is called: for input x, output y and
    x's `SpikeSource` (None when x is not known to be spikes: NeuroBench's value test decides), it
    keeps only the per-position sums of x over its rows, one `SynapticCall` per timestep in the call.
    ``counts(calls, ann)`` then gives, per call, ``acs, macs, effective_acs, effective_macs, dense,
    input_events`` summed over its rows (and ``sample_acs``, ``sample_input_events``, ``sample_macs``:
    the same per row; `sample_sums` adds them up over a batch's steps), all calls of a batch in a few tensor operations; ``ann``: a layer of the ANN twin
    (every op a dense MAC).

    Its structure, for the energy models: ``weights``, ``biases``, ``fan_in``, ``kernel`` (kernel
    positions, 0 for a dense layer), ``kernel_fanout`` (weights one input element addresses: C_out / groups x kernel,
    or the output features), ``inputs`` and ``outputs`` (elements of one sample at one step) and
    ``dense_macs`` (one dense pass of one sample).
    """

    FIELDS = ("acs", "macs", "effective_acs", "effective_macs", "dense", "input_events")
    #: The fields counted per sample too (``sample_<field>``).
    SAMPLE_FIELDS = ("acs", "macs", "input_events")

    def __init__(self, op: SynapticOp, weight: Tensor, args: tuple = (), kwargs: dict | None = None,
                 bias: Tensor | None = None) -> None:
        self.op, self.weight = op, weight.detach()
        self.args, self.kwargs = args, kwargs or {}  # stride, padding ... after (input, weight, bias)
        self.fan_in = self.weight[0].numel()
        self.weights, self.biases = self.weight.numel(), (bias.numel() if isinstance(bias, Tensor) else 0)
        self.kernel = self.weight[0, 0].numel() if self.weight.dim() > 2 else 0
        if op.feature_dims == 1:
            self.kernel_fanout = int(self.weight.shape[0])
        elif op.transposed:  # (C_in, C_out / groups, k...): an input element meets its row of kernels
            self.kernel_fanout = int(self.weight.shape[1]) * self.kernel
        else:  # (C_out, C_in / groups, k...)
            groups = self.args[3] if len(self.args) > 3 else self.kwargs.get("groups", 1)
            self.kernel_fanout = int(self.weight.shape[0]) // int(groups) * self.kernel
        self.inputs = self.outputs = self.dense_macs = 0
        self._fanouts: dict[tuple[int, ...], tuple[Tensor, int]] = {}
        self._folded: dict[tuple, Tensor] = {}
        self._per_rows: dict[tuple, tuple[Tensor, Tensor, bool]] = {}
        self._buffers: dict[tuple, Tensor] = {}

    def fanout(self, shape: tuple[int, ...]) -> tuple[Tensor, int]:
        """(outputs each input element reaches through a nonzero weight, flat, as float64;
        connections of an all-ones input through all weights), exact at the borders."""
        if shape not in self._fanouts:
            nonzero = (self.weight != 0).to(torch.float64)
            reach = self._reach(shape, nonzero)
            every = bool(nonzero.all())  # no weight is zero (trained weights): the dense reach is the same
            dense = int((reach if every else self._reach(shape, torch.ones_like(nonzero))).sum())
            self._fanouts[shape] = (reach.flatten(), dense)
        return self._fanouts[shape]

    def _reach(self, shape: tuple[int, ...], weight: Tensor) -> Tensor:
        # d sum(op(x, W)) / dx_i = sum of the weights x_i meets = its fan-out for 0/1 weights; the
        # op's own stride, padding, dilation, groups and output padding apply
        probe = torch.zeros((1, *shape), dtype=torch.float64, device=weight.device, requires_grad=True)
        with torch.enable_grad():
            out = self.op.function(probe, weight, None, *self.args, **self.kwargs)
            (reach,) = torch.autograd.grad(out.sum(), probe)
        return reach[0]

    def rows(self, x: Tensor) -> Tensor:
        """x as (rows, one input): the batch (and any time or other leading dimensions) first."""
        return x.reshape(-1, *x.shape[x.dim() - self.op.feature_dims:])

    def reduce(self, x: Tensor, y: Tensor, source: SpikeSource | None, steps: int = 1,
               layout: str = "time") -> list[SynapticCall]:
        """One `SynapticCall` per timestep of this call: ``steps`` of them in its rows, which are
        (steps, batch) for ``layout`` "time" (time-major: SpikingJelly) and (batch, steps) for "batch"
        (Sinabs)."""
        rows = self.rows(x)
        self.inputs, self.outputs = rows.numel() // max(rows.shape[0], 1), y.numel() // max(rows.shape[0], 1)
        self.dense_macs = (self.inputs if self.op.transposed else self.outputs) * self.fan_in
        unpooled = None if source is None or source.unpooled is None else source.unpooled.reshape(rows.shape[0], -1)
        if steps == 1:
            return [self._reduce_rows(rows, (x if self.op.transposed else y).numel(), source, unpooled)]

        def step(t: Tensor, r: Tensor) -> Tensor:
            grid = t.unflatten(0, (steps, -1) if layout == "time" else (-1, steps))
            return grid[r] if layout == "time" else grid[:, r]

        elements = (x if self.op.transposed else y).numel() // steps
        return [self._reduce_rows(step(rows, t), elements,
                                  source and SpikeSource(step(rows, t), source.divisor, source.may_exceed_one,
                                                         source.network_input, pool=source.pool,
                                                         unpooled_shape=source.unpooled_shape),
                                  None if unpooled is None else step(unpooled, t))
                for t in range(steps)]

    def _reduce_rows(self, rows: Tensor, mac_elements: int, source: SpikeSource | None,
                     unpooled: Tensor | None = None) -> SynapticCall:
        by_value = source is None or source.network_input
        call = SynapticCall("other" if by_value else source.kind, rows.shape[0], mac_elements, tuple(rows.shape[1:]))
        flat = rows.reshape(rows.shape[0], -1)
        divisor = None if by_value else source.divisor
        reach, events_weight, exact = self._per_row(call.shape, divisor, not by_value and source.may_exceed_one,
                                                    rows.device)
        if by_value:
            # NeuroBench's value test of the whole batch, and its effective ops (nonzero inputs x fan-out);
            # ACs or MACs: each row (one sample at one step) by itself, an integer k is |k| spike events
            call.binary = is_binary(rows)
            call.integer = zero_one_rows(flat) if source else integer_rows(flat)
            call.effective = torch.mv((flat != 0).to(reach.dtype), reach).sum(dtype=torch.float64)
            flat = flat.abs()
        elif divisor is not None:  # events: nonzero values per position, and where needed their sums
            pool, shape = source.pool, source.unpooled_shape
            source = source.reduce(rows, sums=not exact and pool is None, scratch=self._scratch)
            call.nonzero, call.spikes, call.peak, call.pool_divisor = source.nonzero, source.spikes, source.peak, divisor
            if pool is not None:  # overlapping windows: each spike before the pooling, its distinct synapses
                flat = unpooled.to(torch.float64)
                reach = self.folded_fanout(pool, shape, call.shape)
                events_weight = torch.ones_like(reach)
                # the spikes in all windows, for NeuroBench's value test of the pooled values
                call.window_events = torch.mv(rows.reshape(rows.shape[0], -1).to(torch.float64),
                                              divisor.to(torch.float64)).sum().round()
        # Each row's ACs (its elements times their fan-out, times the pooling divisor for events: a
        # pooled value times its divisor is the spikes in its window) and events: two matrix-vector
        # products (one (rows, n) @ (n, 2) product took 1.5-4x as long here, and a row sum 2x one
        # product, py-spy). Where ``exact``, their sums over the rows are the layer's counts.
        flat = flat.to(reach.dtype)
        call.sample_acs, call.sample_events = torch.mv(flat, reach), torch.mv(flat, events_weight)
        if by_value:  # a graded row has no events: its ops are MACs
            counted = call.integer.to(reach.dtype)
            call.sample_acs, call.sample_events = call.sample_acs * counted, call.sample_events * counted
        return call

    def folded_fanout(self, pool: nn.Module, shape: tuple[int, ...], pooled_shape: tuple[int, ...]) -> Tensor:
        """Per element of one sample's input to an overlapping average pooling (``shape``, flat; C
        first), the outputs of this layer it reaches through the pooling and a nonzero weight, each
        once: the synapses of the layer with the pooling folded in, as on Loihi. A spike in k windows
        reaching one output through each is one synaptic op there, not k. Exact: the pooling and the
        op run on one-hot inputs, a chunk at a time, once per layer and shape (``pooled_shape``: the
        pooled values as the op reads them, a flattening included)."""
        key = (shape, id(pool), pooled_shape)
        if key not in self._folded:
            nonzero = (self.weight != 0).to(torch.float64)
            n = int(torch.Size(shape).numel())

            def reached(one_hot: Tensor) -> Tensor:
                pooled = pool.forward(one_hot.reshape(-1, *shape)).reshape(-1, *pooled_shape)
                out = self.op.function(pooled, nonzero, None, *self.args, **self.kwargs)
                return (out != 0).flatten(1).sum(1, dtype=torch.float64)

            pooled = pool.forward(nonzero.new_zeros(1, *shape)).reshape(1, *pooled_shape)
            outputs = self.op.function(pooled, nonzero, None, *self.args, **self.kwargs).numel()
            chunk = max(1, 2**24 // max(outputs, n))
            index = torch.arange(n, device=nonzero.device)
            self._folded[key] = torch.cat([reached(F.one_hot(index[start:start + chunk], n).to(torch.float64))
                                           for start in range(0, n, chunk)])
        return self._folded[key]

    def _scratch(self, like: Tensor) -> Tensor:
        # one buffer per input shape, reused every step: a fresh allocation of a few MB for each
        # step's signs cost about 1 ms a batch more (benchmarks/profile_overhead.py's convnet)
        key = (tuple(like.shape), like.dtype, like.device)
        if key not in self._buffers:
            self._buffers[key] = torch.empty(key[0], dtype=like.dtype, device=like.device)
        return self._buffers[key]

    def _per_row(self, shape: tuple[int, ...], divisor: Tensor | None, may_exceed_one: bool,
                 device: torch.device) -> tuple[Tensor, Tensor, bool]:
        """What a row of input is multiplied by: (fan-out per input element, times the divisor; the
        divisor, 1 for 0/1 input; whether the rows' sums are exact counts), cached (the divisors of a
        profile live as long as it).

        Exact: 0/1 input (float32 where a row sums to an integer below 2^24, which is exact in any
        order of summation, else float64), and events of power-of-two divisors (2x2 pooling: a pooled
        value k / d is exact in binary, k / d times d is the integer k) that cannot exceed 1. Other
        events (a 3x3 window's k / 9) are counted exactly from their sums per position (`_effective`).
        """
        key = (shape, None if divisor is None else divisor.data_ptr(), may_exceed_one)
        if key not in self._per_rows:
            reach = self.fanout(shape)[0]
            d = torch.ones_like(reach) if divisor is None else divisor.to(torch.float64).flatten().expand_as(reach)
            exact = divisor is None or not may_exceed_one and bool((torch.frexp(d).mantissa == 0.5).all())
            weighted = reach * d
            dtype = torch.float32 if max(float(weighted.sum()), float(d.sum())) < 2**24 else torch.float64
            self._per_rows[key] = weighted.to(device, dtype), d.to(device, dtype).contiguous(), exact
        return self._per_rows[key]

    def counts(self, calls: list[SynapticCall], ann: bool = False) -> list[dict[str, float]]:
        """Per call, its operations (class docstring): the calls of one source and input shape at once."""
        out: list[dict[str, float]] = [{} for _ in calls]
        groups: dict[tuple[str, tuple[int, ...]], list[int]] = {}
        for i, call in enumerate(calls):
            groups.setdefault((call.source, call.shape), []).append(i)
        for (source, shape), index in groups.items():
            reach, dense_per_row = self.fanout(shape)
            group = [calls[i] for i in index]
            totals = self._effective(group, reach)
            for i, call, eff, is_bin, ac, n_events, graded in zip(index, group, *(t.tolist() for t in totals)):
                counts: dict[str, Any] = dict.fromkeys(self.FIELDS, 0.0)
                counts["dense"] = float(call.rows * dense_per_row)
                counts["effective_acs" if is_bin else "effective_macs"] = eff
                row_macs = call.mac_elements * self.fan_in / max(call.rows, 1)
                if ann:  # every op a dense MAC, no spike events
                    counts["macs"] = float(call.mac_elements * self.fan_in)
                    counts["sample_macs"] = row_macs
                    out[i] = counts
                    continue
                counts["acs"], counts["sample_acs"] = ac, call.sample_acs
                counts["input_events"], counts["sample_input_events"] = n_events, call.sample_events
                if call.integer is not None:  # judged by value, row by row: the graded rows' MACs
                    counts["macs"] = graded * row_macs
                    counts["sample_macs"] = call.integer.logical_not().to(torch.float64) * row_macs
                out[i] = counts
        return out

    @staticmethod
    def _effective(group: list[SynapticCall], reach: Tensor) -> tuple[Tensor, ...]:
        """For calls of one source: (NeuroBench's effective ops, whether the input is 0/1/-1, the
        ACs of its spike events, the input events, the rows of graded input), one value per call."""
        # the rows' sums (exact but for events whose `SynapticCall.spikes` are kept: `_per_row`)
        acs = torch.stack([c.sample_acs.sum(dtype=torch.float64) for c in group])
        events = torch.stack([c.sample_events.sum(dtype=torch.float64) for c in group])
        if group[0].source == "spikes":  # 0/1 rows: effective ops = ACs
            return acs, torch.ones(len(group), dtype=torch.bool), acs, events, torch.zeros_like(acs)
        if group[0].source == "other":
            graded = torch.stack([c.integer.logical_not().sum(dtype=torch.float64) for c in group])
            return (torch.stack([c.effective for c in group]), torch.stack([c.binary for c in group]), acs, events,
                    graded)
        # Events, values k / d (k spikes in a window of divisor d): every spike in a window is an
        # event with the window's fan-out (as on Loihi); every value is 0 or 1 iff every k <= d
        # and sum(k) = sum([k > 0] * d), integers, exact in float64.
        for i, call in enumerate(group):
            if call.spikes is not None:  # k = the sum per position times d, rounded
                k = (call.spikes.to(torch.float64) * call.pool_divisor).round_()
                acs[i], events[i] = k @ reach, k.sum()
        nonzero = torch.stack([c.nonzero for c in group]).to(torch.float64)
        first = group[0].pool_divisor
        same = all(c.pool_divisor is first for c in group)  # one pooling layer feeds it: broadcast
        divisor = first if same else torch.stack([c.pool_divisor for c in group])
        peak = torch.stack([c.nonzero.new_zeros(()) if c.peak is None else c.peak for c in group])
        windows = torch.stack([e if c.window_events is None else c.window_events for e, c in zip(events, group)])
        binary = (peak <= 1) & (windows == (nonzero * divisor).sum(1))
        return nonzero @ reach, binary, acs, events, torch.zeros_like(acs)


# --- pooling ---------------------------------------------------------------------------------------

def _pool_window_sizes(module: nn.Module, ones: Tensor) -> Tensor:
    """How many input elements each window of an average-pooling layer covers (padding excluded)."""
    if isinstance(module, (nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d)):
        one_d = isinstance(module, nn.AvgPool1d)
        pair = (lambda v: (1, v[0] if isinstance(v, tuple) else v)) if one_d else (lambda v: v)  # noqa: E731
        pool = F.avg_pool3d if isinstance(module, nn.AvgPool3d) else F.avg_pool2d
        sums = pool(ones.unsqueeze(-2) if one_d else ones, pair(module.kernel_size), pair(module.stride),
                    pair(module.padding), module.ceil_mode, True, divisor_override=1)
        return sums.squeeze(-2) if one_d else sums
    sizes = ones.shape[2:]
    out_sizes = module.forward(ones).shape[2:]
    area = torch.ones((), dtype=ones.dtype)
    for axis, (size, out) in enumerate(zip(sizes, out_sizes)):
        i = torch.arange(out)
        # adaptive windows are [floor(i L / O), ceil((i + 1) L / O))
        length = torch.div((i + 1) * size + out - 1, out, rounding_mode="floor") - torch.div(i * size, out, rounding_mode="floor")
        area = area.unsqueeze(-1) * length if axis else length.to(ones.dtype)
    return area.expand(1, 1, *out_sizes)


def windows_per_element(module: nn.Module, shape: tuple[int, ...]) -> Tensor:
    """How many windows of an average pooling each input element of one sample (``shape``, channels
    broadcast) falls in: above 1 somewhere where the windows overlap. d sum_j(pooled_j * divisor_j) / dx_i
    counts the windows holding x_i."""
    probe = torch.ones((1, 1, *shape[1:]), dtype=torch.float64, requires_grad=True)
    with torch.enable_grad():
        windows = module.forward(probe) * pool_divisor(module, shape)
        (count,) = torch.autograd.grad(windows.sum(), probe)
    return count[0, 0]


def pool_divisor(module: nn.Module, shape: tuple[int, ...], device: torch.device | str = "cpu") -> Tensor:
    """What an average pooling divides each window's sum by, shaped like one output (channels
    broadcast): for spikes in, ``output * divisor`` is the number of spikes in each window.

    It is the window's size over the pooling of ones (size / (size / divisor)), which covers
    padding, ``count_include_pad``, ``ceil_mode``, ``divisor_override`` and adaptive windows.
    """
    ones = torch.ones((1, 1, *shape[1:]), dtype=torch.float64)
    # an integer (a window's size or an override) up to the rounding of the two divisions
    return (_pool_window_sizes(module, ones) / module.forward(ones))[0].round().to(device)  # forward: no hooks



def sample_sums(per_step: list[dict[str, Any]], rows: int) -> dict[str, Tensor]:
    """Per sample, summed over one batch's steps: its ``SynapticCounts.SAMPLE_FIELDS``, from `counts`'
    ``sample_<field>`` of each step (a tensor of the batch's ``rows`` samples, or one value for every
    row; absent: 0)."""
    out = {}
    for key in SynapticCounts.SAMPLE_FIELDS:
        values = [counts.get(f"sample_{key}", 0.0) for counts in per_step]
        tensors = [v for v in values if isinstance(v, Tensor)]
        total = (torch.stack(tensors).sum(0, dtype=torch.float64).cpu() if tensors
                 else torch.zeros(max(rows, 1), dtype=torch.float64))
        out[key] = total.add_(sum(v for v in values if not isinstance(v, Tensor)))
    return out
