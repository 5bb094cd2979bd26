"""From a trained `SpikingModel` to a `LoihiNetwork`: trace, fold, quantize.

1. **Trace.** The model's blocks are walked in order into a chain of leaf modules, each looked up in
   `LEAVES`, a {module type: role} table. A module with no role (max pooling, a residual block, a
   graph with adds, recurrence, anything netx cannot express) raises `UnsupportedLayerError` naming
   its module path and pointing to ``--target nir``.
2. **Fold.** BatchNorm is folded into the conv or linear before it (`folding.fold_batchnorm`).
   Average pooling after a neuron is folded into the synapse that follows, which sees the unpooled
   spikes: pooling (k, s) then a conv (K, S, P, D) is one conv with stride s S, padding s P and the
   kernel spread, ``W'[s D a + alpha] += W[a] / k^2`` (per axis); pooling then Flatten + Linear is
   the Linear treated as a conv whose kernel is the whole pooled map. Every fold is checked
   numerically against the unfolded layers (float64) before it is used.
3. **Quantize.** Per layer, with the float weights W, bias b, threshold theta:

   - an 8-bit weight mantissa with a per-layer exponent e (block floating point):
     ``w_mant = clip(round(W / 2^e), -128, 127)``, e the smallest integer with max|W| <= 127 2^e;
     the file holds ``w_mant << 1`` (netx's 8-bit scheme), so one weight unit is 2^(e-1);
   - the threshold mantissa ``vThMant = round(theta / 2^(e-1))`` (17-bit; e is raised until it
     fits); a threshold that rounds to 0 means the weights overflow the format (`WeightOverflowError`);
   - the bias mantissa ``round(b / 2^(e-1))``, 13-bit, clipped; its exponent is netx's fixed
     ``bias_exp = 6`` (state units), i.e. the same 2^(e-1) float step as a weight unit;
   - decays ``iDecay = round(a_u 4096)``, ``vDecay = round(a_v 4096)`` (12-bit; `fixed_point`).

   The readout (the final Linear, no neuron) becomes a non-spiking integrator: its voltage after the
   last step is ``2^6 sum_t (a_in[t] + bias)``. Lava adds its bias at every one of the T + L steps the
   network runs, so the bias mantissa is scaled by T / (T + L) to keep the float model's T biases
   (unless the model was trained in Loihi's timing, ``delay_shift``, which runs T + L steps itself).
   Its exponent is raised until the largest accumulated output seen on calibration data stays below
   2^16 weight units (half the 24-bit voltage range).

Every layer's clipping statistics are recorded in `LayerQuantization`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from snnpipe.hw_targets import ExportError, UnsupportedLayerError
from snnpipe.hw_targets.folding import fold_batchnorm
from snnpipe.hw_targets.loihi import fixed_point as fx
from snnpipe.hw_targets.loihi.network import CubaNeuron, LoihiLayer, LoihiNetwork, readout_neuron
from snnpipe.models import SpikingModel
from snnpipe.models.graph import GraphBlock
from snnpipe.models.layers import BasicBlock
from snnpipe.models.neurons import CubaLIF, Neuron, NeuronParams

TARGET = "loihi"
NIR_HINT = "netx files are sequential chains of dense and conv layers; export this model with --target nir"
#: The readout's accumulated |a_in + bias| must stay below this many weight units: half of the
#: 2^17 that fit in v's 24 bits after the 6-bit shift, a margin for inputs beyond the calibration set.
READOUT_HEADROOM = 1 << 16


class WeightOverflowError(ExportError):
    """Weights too large for Loihi's fixed point at the layer's threshold."""


@dataclass(frozen=True)
class Role:
    """What a module type is in a netx chain: ``synapse``, ``neuron``, ``pool``, ``flatten``, ``skip``,
    or ``unsupported`` with the hint that the error gives."""

    kind: str
    hint: str = ""


LEAVES: dict[type, Role] = {
    nn.Conv2d: Role("synapse"),
    nn.Linear: Role("synapse"),
    CubaLIF: Role("neuron"),
    nn.AvgPool2d: Role("pool"),
    nn.AdaptiveAvgPool2d: Role("pool"),
    nn.Flatten: Role("flatten"),
    nn.Identity: Role("skip"),
    nn.Dropout: Role("skip"),
    nn.MaxPool2d: Role("unsupported", "max pooling has no netx layer (netx cannot read pool layers); "
                       "train with average pooling, or export with --target nir"),
    nn.AdaptiveMaxPool2d: Role("unsupported", "max pooling has no netx layer; export with --target nir"),
    BasicBlock: Role("unsupported", f"a residual add is not sequential: {NIR_HINT}"),
    GraphBlock: Role("unsupported", f"a graph with adds or branches is not sequential: {NIR_HINT}"),
    nn.RNNBase: Role("unsupported", f"recurrence has no netx layer here: {NIR_HINT}"),
    nn.BatchNorm1d: Role("unsupported", "this BatchNorm does not directly follow a conv or linear, so it "
                         "cannot be folded; move it after one, or export with --target nir"),
    nn.BatchNorm2d: Role("unsupported", "this BatchNorm does not directly follow a conv or linear, so it "
                         "cannot be folded; move it after one, or export with --target nir"),
}


def _role(module: nn.Module) -> Role | None:
    for cls in type(module).__mro__:
        if cls in LEAVES:
            return LEAVES[cls]
    if isinstance(module, Neuron):  # the ANN twin's ReLU
        return Role("unsupported", "this is the ANN twin (ReLU, not spiking neurons); export a spiking checkpoint")
    return None


@dataclass
class _Leaf:
    path: str
    module: nn.Module
    role: Role
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]


def trace(model: SpikingModel, input_shape: tuple[int, ...]) -> list[_Leaf]:
    """The model's modules in execution order, with the shape of one sample before and after each.

    Raises:
        UnsupportedLayerError: a module netx cannot express, named by its path.
    """
    leaves: list[_Leaf] = []

    def visit(path: str, module: nn.Module) -> None:
        role = _role(module)
        if role is None and isinstance(module, nn.Sequential):
            for name, child in module.named_children():
                visit(f"{path}.{name}" if path else name, child)
            return
        if role is None:
            role = Role("unsupported", f"it has no netx equivalent: {NIR_HINT}")
        if role.kind == "unsupported":
            raise UnsupportedLayerError(path, module, TARGET, role.hint)
        leaves.append(_Leaf(path, module, role, (), ()))

    blocks = getattr(model, "blocks", None)
    if not isinstance(blocks, nn.ModuleDict):
        raise UnsupportedLayerError("", model, TARGET, "only snnpipe SpikingModels (named blocks) can be traced")
    for name, block in blocks.items():
        visit(f"blocks.{name}", block)
    x = torch.zeros(1, *input_shape)
    with torch.no_grad():
        for leaf in leaves:
            leaf.in_shape = tuple(x.shape[1:])
            if leaf.role.kind != "neuron":  # a neuron keeps the shape; its state must not be touched
                x = leaf.module(x)
            leaf.out_shape = tuple(x.shape[1:])
    return leaves


@dataclass
class _Stage:
    """One synaptic layer with the pools folded into it and the neuron after it (None: readout)."""

    synapse: _Leaf
    pools: list[_Leaf]
    flatten: bool
    neuron: _Leaf | None = None


def _stages(leaves: list[_Leaf]) -> list[_Stage]:
    stages: list[_Stage] = []
    pools: list[_Leaf] = []
    flatten = False
    open_stage: _Stage | None = None
    for leaf in leaves:
        kind = leaf.role.kind
        if kind == "skip":
            continue
        if kind == "pool":
            if open_stage is not None:
                raise UnsupportedLayerError(leaf.path, leaf.module, TARGET, "average pooling between a synapse and its "
                                            "neuron cannot be folded; pool after the neuron")
            if flatten:
                raise UnsupportedLayerError(leaf.path, leaf.module, TARGET, "pooling after a Flatten has no image to pool")
            pools.append(leaf)
        elif kind == "flatten":
            if open_stage is not None:
                raise UnsupportedLayerError(leaf.path, leaf.module, TARGET, "a Flatten between a synapse and its neuron")
            flatten = len(leaf.in_shape) > 1
        elif kind == "synapse":
            if open_stage is not None:
                raise UnsupportedLayerError(leaf.path, leaf.module, TARGET, "two synaptic layers with no neuron between "
                                            "them; netx gives every layer neurons")
            if isinstance(leaf.module, nn.Linear) and len(leaf.in_shape) != 1:
                raise UnsupportedLayerError(leaf.path, leaf.module, TARGET, "a Linear on an image needs a Flatten before it")
            if isinstance(leaf.module, nn.Conv2d) and len(leaf.in_shape) != 3:
                raise UnsupportedLayerError(leaf.path, leaf.module, TARGET, "a Conv2d needs a (C, H, W) input")
            open_stage = _Stage(leaf, pools, flatten)
            pools, flatten = [], False
        elif kind == "neuron":
            if open_stage is None:
                raise UnsupportedLayerError(leaf.path, leaf.module, TARGET, "a neuron with no conv or linear before it "
                                            "has no netx layer")
            open_stage.neuron = leaf
            stages.append(open_stage)
            open_stage = None
    if open_stage is not None:
        stages.append(open_stage)  # the readout
    if pools or flatten:
        last = (pools or leaves)[-1]
        raise UnsupportedLayerError(last.path, last.module, TARGET, "nothing after it to fold it into")
    if not stages:
        raise UnsupportedLayerError("", leaves[0].module if leaves else None, TARGET, "the model has no conv or linear layer")
    for stage in stages[:-1]:
        if stage.neuron is None:  # pragma: no cover - _stages closes a stage only at a neuron
            raise UnsupportedLayerError(stage.synapse.path, stage.synapse.module, TARGET, "a layer without neurons")
    return stages


@dataclass
class _FloatConv:
    """A float layer as a conv (a Linear is a conv whose kernel covers its whole input)."""

    weight: Tensor  # (out, in/groups, kh, kw), float64
    bias: Tensor | None
    stride: tuple[int, int]
    padding: tuple[int, int]
    dilation: tuple[int, int]
    groups: int


def _pool_geometry(pool: _Leaf) -> tuple[tuple[int, int], tuple[int, int], float]:
    module = pool.module
    if isinstance(module, nn.AdaptiveAvgPool2d):
        out = nn.modules.utils._pair(module.output_size)
        h, w = pool.in_shape[1:]
        out = (out[0] or h, out[1] or w)
        if h % out[0] or w % out[1]:
            raise UnsupportedLayerError(pool.path, module, TARGET, f"adaptive pooling of {h}x{w} to {out[0]}x{out[1]} "
                                        "has uneven windows and cannot be folded")
        kernel = (h // out[0], w // out[1])
        return kernel, kernel, 1.0 / (kernel[0] * kernel[1])
    kernel = nn.modules.utils._pair(module.kernel_size)
    stride = nn.modules.utils._pair(module.stride or module.kernel_size)
    if module.ceil_mode or nn.modules.utils._pair(module.padding) != (0, 0):
        raise UnsupportedLayerError(pool.path, module, TARGET, "only average pooling without padding or ceil_mode folds "
                                    "into the next layer")
    divisor = module.divisor_override or kernel[0] * kernel[1]
    return kernel, stride, 1.0 / divisor


def _fold_pool(conv: _FloatConv, pool: _Leaf) -> _FloatConv:
    """The conv of ``conv(pool(x))`` on x (module docstring); ``pool`` is the pooling module's leaf."""
    (kh, kw), (sh, sw), scale = _pool_geometry(pool)
    out, cin, ah, aw = conv.weight.shape
    dh, dw = conv.dilation
    spread = torch.zeros(out, cin, sh * dh * (ah - 1) + kh, sw * dw * (aw - 1) + kw, dtype=torch.float64)
    for a in range(ah):
        for b in range(aw):
            tap = conv.weight[:, :, a, b] * scale
            spread[:, :, sh * dh * a:sh * dh * a + kh, sw * dw * b:sw * dw * b + kw] += tap[:, :, None, None]
    stride = (conv.stride[0] * sh, conv.stride[1] * sw)
    padding = (conv.padding[0] * sh, conv.padding[1] * sw)
    return _FloatConv(spread, conv.bias, stride, padding, (1, 1), conv.groups)


def _apply(conv: _FloatConv, x: Tensor) -> Tensor:
    return F.conv2d(x, conv.weight, conv.bias, conv.stride, conv.padding, conv.dilation, conv.groups)


def _float_layer(stage: _Stage, generator: torch.Generator) -> tuple[_FloatConv, tuple[int, ...]]:
    """The stage's synapse with its pools folded in, and the shape of the input it then takes."""
    module = stage.synapse.module
    with torch.no_grad():
        bias = module.bias.detach().double().clone() if module.bias is not None else None
        if isinstance(module, nn.Conv2d):
            pad4 = module._reversed_padding_repeated_twice  # (left, right, top, bottom)
            if module.padding_mode != "zeros" or pad4[0] != pad4[1] or pad4[2] != pad4[3]:
                raise UnsupportedLayerError(stage.synapse.path, module, TARGET, "only symmetric zero padding has a netx form")
            pad = (pad4[2], pad4[0])
            conv = _FloatConv(module.weight.detach().double().clone(), bias, tuple(module.stride), pad,
                              tuple(module.dilation), module.groups)
            in_shape = stage.synapse.in_shape
        else:
            pooled = stage.pools[-1].out_shape if stage.pools else None
            if stage.pools:  # the Linear as a conv over the pooled (C, H, W) map
                conv = _FloatConv(module.weight.detach().double().reshape(module.out_features, *pooled), bias,
                                  (1, 1), (0, 0), (1, 1), 1)
            else:
                conv = _FloatConv(module.weight.detach().double()[:, :, None, None], bias, (1, 1), (0, 0), (1, 1), 1)
            in_shape = stage.synapse.in_shape
        for pool in reversed(stage.pools):
            folded = _fold_pool(conv, pool)
            x = torch.rand(2, *pool.in_shape, generator=generator, dtype=torch.float64)
            pooled = pool.module(x)
            reference = _apply(conv, pooled)
            got = _apply(folded, x)
            if got.shape != reference.shape or not torch.allclose(got, reference, rtol=1e-9, atol=1e-9):
                raise UnsupportedLayerError(pool.path, pool.module, TARGET, f"its windows do not tile its {pool.in_shape} "
                                            f"input, so it cannot be folded into {stage.synapse.path}")
            conv, in_shape = folded, pool.in_shape
    return conv, in_shape


@dataclass
class LayerQuantization:
    """How one layer was quantized, and what the fixed point lost.

    Attributes:
        name: module path of the synaptic layer; ``kind``: dense or conv; ``pools_folded``: paths.
        neurons, synapses: of the exported layer (conv synapses counted per output neuron, padding excluded).
        weight_exp: the block exponent e: a weight is ``w_mant * 2^e`` in the float model's units.
        weight_mantissa_min, weight_mantissa_max: the range of the 8-bit mantissas used.
        weights_clipped: mantissas clipped to [-128, 127]; ``weights_zeroed``: nonzero weights that round to 0.
        weight_rel_rmse: RMS quantization error of the weights over RMS of the weights.
        loihi_weight_exp, loihi_weight_bits: the synapse exponent and precision netx gives Lava
            (dense; Lava's conv applies neither: 8 bits, exponent 0).
        vth_mant: threshold mantissa (None for the readout); ``threshold_rel_error``: |theta_q - theta| / theta.
        bias_exp: netx's bias exponent (6, state units); ``bias_step``: the float value of one bias unit.
        biases_clipped: bias mantissas clipped to 13 bits.
        i_decay, v_decay: netx's decays; ``current_decay_error``, ``voltage_decay_error``: |a_q - a|.
        readout: the non-spiking output layer.
    """

    name: str
    kind: str
    pools_folded: list[str]
    neurons: int
    synapses: int
    weight_exp: int
    weight_mantissa_min: int
    weight_mantissa_max: int
    weights_clipped: int
    weights_zeroed: int
    weight_rel_rmse: float
    loihi_weight_exp: int
    loihi_weight_bits: int
    vth_mant: int | None
    threshold_rel_error: float | None
    bias_exp: int
    bias_step: float
    biases_clipped: int
    i_decay: int
    v_decay: int
    current_decay_error: float
    voltage_decay_error: float
    readout: bool

    def to_dict(self) -> dict:
        return asdict(self)


def block_exponent(max_abs_weight: float) -> int:
    """The smallest e with ``max_abs_weight <= 127 * 2^e`` (the 8-bit mantissa's largest value)."""
    e = math.ceil(math.log2(max_abs_weight / fx.WEIGHT_MANT_MAX))
    while max_abs_weight > fx.WEIGHT_MANT_MAX * 2.0**e:  # log2 rounding at exact powers
        e += 1
    while e > -1074 and max_abs_weight <= fx.WEIGHT_MANT_MAX * 2.0 ** (e - 1):
        e -= 1
    return e


def layer_exponent(max_abs_weight: float, threshold: float | None) -> int:
    """The layer's exponent: `block_exponent`, raised until the threshold mantissa fits 17 bits.

    Raises:
        WeightOverflowError: the threshold would round to a mantissa of 0.
    """
    e = block_exponent(max_abs_weight)
    if threshold is None:
        return e
    while round(threshold / 2.0 ** (e - 1)) > fx.VTH_MANT_MAX:
        e += 1
    if round(threshold / 2.0 ** (e - 1)) < 1:
        raise WeightOverflowError(
            f"weights up to {max_abs_weight:.4g} overflow Loihi's 8-bit weight mantissa at threshold {threshold:g} "
            f"(the threshold would round to vThMant 0; weights must stay below {fx.WEIGHT_MANT_MAX * 2 * threshold:.4g})"
        )
    return e


def weight_mantissa(weight: Tensor, exponent: int) -> Tensor:
    """``clip(round(w / 2^e), -128, 127)``: the 8-bit mantissa of each weight, as float."""
    return torch.clamp(torch.round(weight / 2.0**exponent), fx.WEIGHT_MANT_MIN, fx.WEIGHT_MANT_MAX)


def fake_quantize(weight: Tensor, exponent: int) -> Tensor:
    """``weight_mantissa(w, e) * 2^e``: the weight Loihi holds, in float (what the export writes)."""
    return weight_mantissa(weight, exponent) * 2.0**exponent


def _quantize_stage(stage: _Stage, conv: _FloatConv, in_shape: tuple[int, ...], timesteps: int, total_layers: int,
                    readout_range: float | None, delay_shift: bool) -> tuple[LoihiLayer, LayerQuantization]:
    path = stage.synapse.path
    weight, bias = conv.weight, conv.bias
    max_abs = float(weight.abs().max())
    if max_abs == 0.0:
        raise ExportError(f"{path}: every weight is zero; netx cannot scale an all-zero layer (remove the layer or retrain)")
    params: NeuronParams | None = stage.neuron.module.params if stage.neuron is not None else None
    if params is not None:
        if params.refractory_steps:
            raise UnsupportedLayerError(stage.neuron.path, stage.neuron.module, TARGET,
                                        f"refractory_steps={params.refractory_steps}: netx's CUBA neuron (Lava LIF) has no "
                                        "refractory period; retrain with --refractory-steps 0 or export with --target nir")
        try:
            decays = fx.quantize_current_decay(params.current_decay), fx.quantize_voltage_decay(params.voltage_decay)
        except ValueError as err:
            raise UnsupportedLayerError(stage.neuron.path, stage.neuron.module, TARGET, f"{err}; retrain with a decay Lava can hold") from None
        e = layer_exponent(max_abs, params.threshold)
    else:
        e = block_exponent(max_abs)
        if readout_range is not None:
            while readout_range / 2.0 ** (e - 1) > READOUT_HEADROOM:
                e += 1
    step = 2.0 ** (e - 1)  # one weight unit
    mant = weight_mantissa(weight, e)
    quantized = mant * 2.0**e  # = fake_quantize(weight, e), the grid quantization-aware training used
    error = float(torch.sqrt(((quantized - weight) ** 2).mean()) / torch.sqrt((weight**2).mean()))
    bias_mant, biases_clipped = None, 0
    if bias is not None:
        # a float model in Loihi's timing (delay_shift) adds the readout's bias at all T + L steps too
        scale = timesteps / (timesteps + total_layers) if params is None and not delay_shift else 1.0
        raw_bias = torch.round(bias * scale / step)
        clipped = raw_bias.clamp(fx.BIAS_MANT_MIN, fx.BIAS_MANT_MAX)
        biases_clipped = int((clipped != raw_bias).sum())
        bias_mant = clipped.to(torch.int64).numpy() if bool((clipped != 0).any()) else None
    neuron = CubaNeuron(*decays, int(round(params.threshold / step))) if params is not None else readout_neuron()
    file_weight = (mant.to(torch.int64) << fx.WEIGHT_FILE_SHIFT)
    if isinstance(stage.synapse.module, nn.Linear):
        file_weight = file_weight.reshape(file_weight.shape[0], -1)
        layer = LoihiLayer(path, "dense", (math.prod(in_shape),), (file_weight.shape[0],), file_weight.numpy(), bias_mant,
                           neuron, flatten=stage.flatten or len(in_shape) > 1)
        try:
            fmt = fx.dense_synapse_format(layer.weight)
        except ValueError:
            raise ExportError(f"{path}: every weight quantizes to zero at exponent {e}; netx cannot scale an all-zero "
                              "layer (retrain with --quantize loihi)") from None
        loihi_exp, loihi_bits = fmt.weight_exp, fmt.num_weight_bits
    else:
        layer = LoihiLayer(path, "conv", in_shape, stage.synapse.out_shape, file_weight.numpy(), bias_mant, neuron,
                           stride=conv.stride, padding=conv.padding, dilation=conv.dilation, groups=conv.groups)
        loihi_exp, loihi_bits = 0, 8
    quant = LayerQuantization(
        name=path, kind=layer.kind, pools_folded=[p.path for p in stage.pools], neurons=layer.neurons,
        synapses=layer.synapses(), weight_exp=e, weight_mantissa_min=int(mant.min()), weight_mantissa_max=int(mant.max()),
        weights_clipped=int((torch.round(weight / 2.0**e) != mant).sum()), weights_zeroed=int(((mant == 0) & (weight != 0)).sum()),
        weight_rel_rmse=error, loihi_weight_exp=loihi_exp, loihi_weight_bits=loihi_bits,
        vth_mant=neuron.vth_mant if params is not None else None,
        threshold_rel_error=abs(neuron.vth_mant * step - params.threshold) / params.threshold if params is not None else None,
        bias_exp=fx.NETX_BIAS_EXP, bias_step=step, biases_clipped=biases_clipped,
        i_decay=neuron.i_decay, v_decay=neuron.v_decay,
        current_decay_error=abs(neuron.i_decay / fx.DECAY_UNITY - (params.current_decay if params else 1.0)),
        voltage_decay_error=abs(neuron.v_decay / fx.DECAY_UNITY - (params.voltage_decay if params else 0.0)),
        readout=params is None,
    )
    return layer, quant


@dataclass
class QuantizedModel:
    """The exported network and how each layer was quantized."""

    network: LoihiNetwork
    layers: list[LayerQuantization]


def quantize_model(model: SpikingModel, input_shape: tuple[int, ...], timesteps: int,
                   readout_range: Callable[[SpikingModel], float] | float | None = None) -> QuantizedModel:
    """Fold and quantize ``model`` (module docstring).

    Args:
        model: the trained spiking model.
        input_shape: one sample, (C, H, W).
        timesteps: T of the input: the readout's bias is scaled by T / (T + layers).
        readout_range: the largest |sum_t output| of the folded float model on calibration data, or
            a function of the folded model that measures it; None skips the readout's range check.

    Raises:
        UnsupportedLayerError: a module netx cannot express (named by its path).
        WeightOverflowError: weights too large for the fixed point at the layer's threshold.
        ExportError: a layer whose weights are all zero.
    """
    if not getattr(model, "spiking", True):
        raise UnsupportedLayerError("", model, TARGET, "this is the ANN twin (ReLU, not spiking neurons); export a spiking checkpoint")
    folded = fold_batchnorm(model)
    leaves = trace(folded, tuple(input_shape))
    stages = _stages(leaves)
    if callable(readout_range):
        readout_range = readout_range(folded)
    generator = torch.Generator().manual_seed(0)
    layers, quants = [], []
    for stage in stages:
        conv, in_shape = _float_layer(stage, generator)
        layer, quant = _quantize_stage(stage, conv, in_shape, timesteps, len(stages), readout_range,
                                       bool(getattr(model, "delay_shift", False)))
        layers.append(layer)
        quants.append(quant)
    try:
        network = LoihiNetwork(tuple(input_shape), layers)
    except ValueError as err:  # pragma: no cover - shapes come from tracing the model itself
        raise ExportError(f"the traced layers do not chain: {err}") from None
    return QuantizedModel(network, quants)
