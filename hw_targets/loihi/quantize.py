"""From a trained `SpikingModel` to a `LoihiGraph` (a `LoihiNetwork` when it is a chain): fold, quantize.

1. **Fold and trace.** BatchNorm is folded into the conv or linear before it
   (`folding.fold_batchnorm`), and the model traced into the typed graph (`snnpipe.models.tracer`),
   which `grouping` groups into Loihi layers: neurons fed by the sum of their branches. Any graph
   of that IR quantizes the same way (`quantize_graph`: a NIR file, an imported network).
2. **Fold pooling.** Average (or sum) pooling after a neuron is folded into the synapse that follows, which sees the unpooled
   spikes: pooling (k, s) then a conv (K, S, P, D) is one conv with stride s S, padding s P and the
   kernel spread, ``W'[s D a + alpha] += W[a] / k^2`` (per axis); pooling then Flatten + Linear is
   the Linear treated as a conv whose kernel is the whole pooled map. Every fold is checked
   numerically against the unfolded layers (float64) before it is used.
3. **Quantize.** Per node, with the float weights W of all its branches, their biases b, threshold theta:

   - an 8-bit weight mantissa with one exponent e for every branch of the node (they add into the
     same current, so they share its unit): ``w_mant = clip(round(W / 2^e), -128, 127)``, e the
     smallest integer with max|W| <= 127 2^e over the branches; the file holds ``w_mant << 1``
     (netx's 8-bit scheme), so one weight unit is 2^(e-1);
   - an identity branch (a residual block's identity shortcut) has the weight 1.0: it counts in
     max|W| and becomes the mantissa ``2^-e`` (exact for -6 <= e <= 0, else `WeightOverflowError`);
   - the threshold mantissa ``vThMant = round(theta / 2^(e-1))`` (17-bit; e is raised until it
     fits); a threshold that rounds to 0 means the weights overflow the format (`WeightOverflowError`);
   - the bias mantissa ``round(sum b / 2^(e-1))``, 13-bit, clipped; its exponent is netx's fixed
     ``bias_exp = 6`` (state units), i.e. the same 2^(e-1) float step as a weight unit;
   - decays ``iDecay = round(a_u 4096)``, ``vDecay = round(a_v 4096)`` (12-bit; `fixed_point`);
   - a neuron's own bias (the IR's ``CubaLIF.bias``, added to v every step as Lava adds its bias)
     joins the synapses' biases.

   Graded input (``input_bits`` b > 0, the direct encoding): the input is sent as the integers
   ``x_q = clip(round(x / 2^input_exp), -2^(b-1), 2^(b-1) - 1)`` (`LoihiGraph.quantize_input`; round
   half to even), ``input_exp`` the smallest with
   max|x| <= (2^(b-1) - 1) 2^input_exp on the calibration data; a branch from the input computes
   ``W x = (W 2^input_exp) x_q``, so ``W 2^input_exp`` is what is quantized (the same mantissas as W:
   a power of two moves only the exponent). ``input_exp`` is then raised until the first layer's
   current on the calibration data, ``a_in = W x / (2^(e-1) 2^input_exp)`` weight units, stays below
   2^16 (half of what u's 24 bits hold after the 6-bit shift): a dense layer of 784 pixels can sum
   more than 8-bit inputs times 8-bit weights fit. The bits above the exponent then go unused, and
   the report says how many are left.

   The readout (the final Linear, no neuron) becomes a non-spiking integrator: its voltage after the
   last step is ``2^6 sum_t (a_in[t] + bias)``. Lava adds its bias at every one of the T + L steps the
   network runs (L the readout's depth), so the bias mantissa is scaled by T / (T + L) to keep the
   float model's T biases (unless the model was trained in Loihi's timing, ``delay_shift``, which
   runs T + L steps itself). Its exponent is raised until the largest accumulated output seen on
   calibration data stays below 2^16 weight units (half the 24-bit voltage range).
4. **Align** (`graph`): where a node's branches have different depths (a residual block: two
   synapses on the main branch, none or one on the shortcut), relay nodes are put on the shorter
   branch, shared by every branch that needs the same delay of the same source.

Every node's clipping statistics are recorded in `LayerQuantization`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from snnpipe.hw_targets import ExportError, UnsupportedLayerError
from snnpipe.hw_targets.folding import fold_batchnorm
from snnpipe.hw_targets.loihi import fixed_point as fx
from snnpipe.hw_targets.loihi.graph import INPUT, Connection, GraphNode, LoihiGraph, identity_connection, relay_node
from snnpipe.hw_targets.loihi.grouping import (TARGET, Branch, LoihiLayer, Pool, layer_parameter, loihi_layers,
                                               naming_nodes, traced)
from snnpipe.hw_targets.loihi.network import CubaNeuron, LoihiNetwork, readout_neuron
from snnpipe.models import SpikingModel, ir

#: The readout's accumulated |a_in + bias| must stay below this many weight units: half of the
#: 2^17 that fit in v's 24 bits after the 6-bit shift, a margin for inputs beyond the calibration set.
READOUT_HEADROOM = 1 << 16
#: A first layer's graded-input current |a_in| must stay below this many weight units on the
#: calibration data (the 24-bit u holds 2^17 after the 6-bit shift; half of it, a margin).
INPUT_CURRENT_HEADROOM = 1 << 16


class WeightOverflowError(ExportError):
    """Weights too large for Loihi's fixed point at the layer's threshold."""


@dataclass
class _FloatConv:
    """A float layer as a conv (a Linear is a conv whose kernel covers its whole input)."""

    weight: Tensor  # (out, in/groups, kh, kw), float64
    bias: Tensor | None
    stride: tuple[int, int]
    padding: tuple[int, int]
    dilation: tuple[int, int]
    groups: int


def _pool_scale(pool: Pool) -> float:
    """What each input of a window counts: 1 / its size for an average, 1 for a sum."""
    return 1.0 if isinstance(pool.node, ir.SumPool2d) else 1.0 / math.prod(pool.node.kernel_size)


def _pool(pool: Pool, x: Tensor) -> Tensor:
    """The pooling itself (no padding: `grouping` refuses it)."""
    node = pool.node
    return F.avg_pool2d(x, node.kernel_size, node.stride) * (math.prod(node.kernel_size) * _pool_scale(pool))


def _fold_pool(conv: _FloatConv, pool: Pool) -> _FloatConv:
    """The conv of ``conv(pool(x))`` on x (module docstring)."""
    (kh, kw), (sh, sw), scale = pool.node.kernel_size, pool.node.stride, _pool_scale(pool)
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


def _conv_padding(branch: Branch) -> tuple[int, int]:
    """The conv's padding as (height, width); ``same`` only where it is symmetric."""
    node = branch.layer
    if node.padding == "valid":
        return (0, 0)
    if node.padding == "same":
        total = [d * (k - 1) for d, k in zip(node.dilation, node.weight.shape[2:])]
        if any(t % 2 for t in total):
            raise UnsupportedLayerError(branch.path, node, TARGET, "padding='same' pads this kernel unevenly; only "
                                        "symmetric zero padding has a Loihi form")
        return (total[0] // 2, total[1] // 2)
    return tuple(node.padding)


def _float_layer(branch: Branch, generator: torch.Generator) -> tuple[_FloatConv, tuple[int, ...]]:
    """The branch's synapse with its source's pools folded in, and the shape of the input it then takes."""
    node, pools = branch.layer, branch.source.pools
    with torch.no_grad():
        weight = torch.from_numpy(np.array(node.weight, dtype=np.float64))
        bias = torch.from_numpy(np.array(node.bias, dtype=np.float64)) if node.bias is not None else None
        if isinstance(node, ir.Conv2d):
            conv = _FloatConv(weight, bias, tuple(node.stride), _conv_padding(branch), tuple(node.dilation), node.groups)
        elif pools:  # the Affine as a conv over the pooled (C, H, W) map
            conv = _FloatConv(weight.reshape(len(weight), *pools[-1].out_shape), bias, (1, 1), (0, 0), (1, 1), 1)
        else:
            conv = _FloatConv(weight[:, :, None, None], bias, (1, 1), (0, 0), (1, 1), 1)
        in_shape = branch.in_shape
        for pool in reversed(pools):
            folded = _fold_pool(conv, pool)
            x = torch.rand(2, *pool.in_shape, generator=generator, dtype=torch.float64)
            reference = _apply(conv, _pool(pool, x))
            got = _apply(folded, x)
            if got.shape != reference.shape or not torch.allclose(got, reference, rtol=1e-9, atol=1e-9):
                raise UnsupportedLayerError(pool.name, pool.node, TARGET, f"its windows do not tile its {pool.in_shape} "
                                            f"input, so it cannot be folded into {branch.path}")
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
        connections: the module paths of the synapses summed into the node (a residual block: two).
        relay: a delay relay the exporter inserted to align branches (not a layer of the model).
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
    connections: list[str] = field(default_factory=list)
    relay: bool = False

    def to_dict(self) -> dict:
        return asdict(self)


def block_exponent(max_abs_weight: float, mantissa_max: int = fx.WEIGHT_MANT_MAX) -> int:
    """The smallest e with ``max_abs_weight <= mantissa_max * 2^e`` (default: the 8-bit weight mantissa's 127)."""
    e = math.ceil(math.log2(max_abs_weight / mantissa_max))
    while max_abs_weight > mantissa_max * 2.0**e:  # log2 rounding at exact powers
        e += 1
    while e > -1074 and max_abs_weight <= mantissa_max * 2.0 ** (e - 1):
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


@dataclass(frozen=True)
class _Neuron:
    """A layer's neuron parameters, one value each (`grouping.layer_parameter`)."""

    current_decay: float
    voltage_decay: float
    threshold: float
    bias: float


def _neuron(layer: LoihiLayer) -> _Neuron | None:
    node = layer.neuron
    if node is None:
        return None
    values = [layer_parameter(layer.neuron_name, node, key) for key in ("current_decay", "voltage_decay", "threshold")]
    bias = layer_parameter(layer.neuron_name, node, "bias") if node.bias is not None else 0.0
    return _Neuron(*values, bias)


def _node_exponent(max_abs: float, params: _Neuron | None, readout_range: float | None) -> int:
    """The node's exponent: from its threshold (`layer_exponent`), or for the readout from its weights,
    raised until the calibrated output range fits `READOUT_HEADROOM`."""
    if params is not None:
        return layer_exponent(max_abs, params.threshold)
    e = block_exponent(max_abs)
    if readout_range is not None:
        while readout_range / 2.0 ** (e - 1) > READOUT_HEADROOM:
            e += 1
    return e


def _neuron_decays(layer: LoihiLayer, params: _Neuron) -> tuple[int, int]:
    node = layer.neuron
    if node.reset != "zero":
        raise UnsupportedLayerError(layer.neuron_name, node, TARGET,
                                    f"reset={node.reset!r}: Lava's LIF resets the voltage to 0; retrain with "
                                    "--reset zero, or export with --target onnx")
    if node.refractory_steps:
        raise UnsupportedLayerError(layer.neuron_name, node, TARGET,
                                    f"refractory_steps={node.refractory_steps}: netx's CUBA neuron (Lava LIF) has no "
                                    "refractory period; retrain with --refractory-steps 0 or export with --target nir")
    try:
        return fx.quantize_current_decay(params.current_decay), fx.quantize_voltage_decay(params.voltage_decay)
    except ValueError as err:
        raise UnsupportedLayerError(layer.neuron_name, node, TARGET, f"{err}; retrain with a decay Lava can hold") from None


def _synapse_connection(branch: Branch, conv: _FloatConv, in_shape: tuple[int, ...], file_weight: Tensor) -> Connection:
    if isinstance(branch.layer, ir.Affine):
        return Connection(branch.source.node, branch.path, "dense", (math.prod(in_shape),),
                          file_weight.reshape(file_weight.shape[0], -1).numpy(),
                          flatten=branch.source.flatten or len(in_shape) > 1)
    return Connection(branch.source.node, branch.path, "conv", in_shape, file_weight.numpy(), stride=conv.stride,
                      padding=conv.padding, dilation=conv.dilation, groups=conv.groups)


def _quantize_node(node: LoihiLayer, floats: list[tuple[_FloatConv, tuple[int, ...]] | None], timesteps: int,
                   depth: int, readout_range: float | None, delay_shift: bool) -> tuple[GraphNode, "LayerQuantization"]:
    """One node: its branches' weights on one exponent, its threshold, summed bias and decays
    (module docstring, step 3). ``floats`` holds each branch's folded float layer (None: identity)."""
    weights = [f[0].weight for f in floats if f is not None]
    max_abs = max([float(w.abs().max()) for w in weights] + [1.0 if None in floats else 0.0])
    if max_abs == 0.0:
        raise ExportError(f"{node.name}: every weight is zero; Loihi cannot scale an all-zero layer (remove the layer "
                          "or retrain)")
    params = _neuron(node)
    decays = _neuron_decays(node, params) if params is not None else None
    e = _node_exponent(max_abs, params, readout_range)
    step = 2.0 ** (e - 1)  # one weight unit
    connections, mantissas, originals = [], [], []
    for branch, fl in zip(node.branches, floats):
        if fl is None:
            if e > 0:
                raise WeightOverflowError(f"{branch.path}: the identity shortcut (weight 1.0) has no 8-bit mantissa at "
                                          f"its node's exponent {e} (weights up to {max_abs:.4g}); retrain with smaller "
                                          "weights or a lower threshold")
            connections.append(identity_connection(branch.source.node, branch.path, branch.source.shape, 1 << -e))
            continue
        conv, in_shape = fl
        mant = weight_mantissa(conv.weight, e)
        mantissas.append(mant)
        originals.append(conv.weight)
        connections.append(_synapse_connection(branch, conv, in_shape, mant.to(torch.int64) << fx.WEIGHT_FILE_SHIFT))
    biases = [f[0].bias for f in floats if f is not None and f[0].bias is not None]
    if params is not None and params.bias:
        biases.append(torch.full((node.out_shape[0],), params.bias, dtype=torch.float64))
    bias_mant, biases_clipped = None, 0
    if biases:
        # a float model in Loihi's timing (delay_shift) adds the readout's bias at all T + L steps too
        scale = timesteps / (timesteps + depth) if params is None and not delay_shift else 1.0
        raw_bias = torch.round(sum(biases) * scale / step)
        clipped = raw_bias.clamp(fx.BIAS_MANT_MIN, fx.BIAS_MANT_MAX)
        biases_clipped = int((clipped != raw_bias).sum())
        bias_mant = clipped.to(torch.int64).numpy() if bool((clipped != 0).any()) else None
    neuron = CubaNeuron(*decays, int(round(params.threshold / step))) if params is not None else readout_neuron()
    graph_node = GraphNode(node.name, node.out_shape, neuron, bias_mant, connections)
    main = connections[0]
    if main.kind == "dense":
        try:
            fmt = fx.dense_synapse_format(main.weight)
        except ValueError:
            raise ExportError(f"{node.name}: every weight quantizes to zero at exponent {e}; Loihi cannot scale an "
                              "all-zero layer (retrain with --quantize loihi)") from None
        loihi_exp, loihi_bits = fmt.weight_exp, fmt.num_weight_bits
    else:
        loihi_exp, loihi_bits = 0, 8
    all_mant = torch.cat([m.flatten() for m in mantissas]) if mantissas else torch.ones(1)
    all_w = torch.cat([w.flatten() for w in originals]) if originals else torch.ones(1)
    quantized = all_mant * 2.0**e
    error = float(torch.sqrt(((quantized - all_w) ** 2).mean()) / torch.sqrt((all_w**2).mean()))
    quant = LayerQuantization(
        name=node.name, kind=main.kind, pools_folded=[p.name for b in node.branches for p in b.source.pools],
        neurons=graph_node.neurons, synapses=graph_node.synapses(), weight_exp=e,
        weight_mantissa_min=int(all_mant.min()), weight_mantissa_max=int(all_mant.max()),
        weights_clipped=int((torch.round(all_w / 2.0**e) != all_mant).sum()),
        weights_zeroed=int(((all_mant == 0) & (all_w != 0)).sum()),
        weight_rel_rmse=error, loihi_weight_exp=loihi_exp, loihi_weight_bits=loihi_bits,
        vth_mant=neuron.vth_mant if params is not None else None,
        threshold_rel_error=abs(neuron.vth_mant * step - params.threshold) / params.threshold if params is not None else None,
        bias_exp=fx.NETX_BIAS_EXP, bias_step=step, biases_clipped=biases_clipped,
        i_decay=neuron.i_decay, v_decay=neuron.v_decay,
        current_decay_error=abs(neuron.i_decay / fx.DECAY_UNITY - (params.current_decay if params else 1.0)),
        voltage_decay_error=abs(neuron.v_decay / fx.DECAY_UNITY - (params.voltage_decay if params else 0.0)),
        readout=params is None, connections=[c.name for c in connections],
    )
    return graph_node, quant


def _relay_quantization(node: GraphNode) -> "LayerQuantization":
    """The report entry of a relay node: one identity weight, nothing lost."""
    return LayerQuantization(
        name=node.name, kind=node.connections[0].kind, pools_folded=[], neurons=node.neurons, synapses=node.synapses(),
        weight_exp=0, weight_mantissa_min=1, weight_mantissa_max=1, weights_clipped=0, weights_zeroed=0,
        weight_rel_rmse=0.0, loihi_weight_exp=0, loihi_weight_bits=8, vth_mant=node.neuron.vth_mant,
        threshold_rel_error=None, bias_exp=fx.NETX_BIAS_EXP, bias_step=0.0, biases_clipped=0,
        i_decay=node.neuron.i_decay, v_decay=node.neuron.v_decay, current_decay_error=0.0, voltage_decay_error=0.0,
        readout=False, connections=[c.name for c in node.connections], relay=True,
    )


@dataclass
class QuantizedModel:
    """The exported graph, how each node was quantized, and the netx chain when it is one."""

    graph: LoihiGraph
    layers: list[LayerQuantization]
    input_exp_for_range: int = 0  # graded input: the exponent the input's range alone asked for

    @property
    def network(self) -> LoihiNetwork | None:
        """The netx chain (`LoihiGraph.as_network`), or None for a graph netx cannot say."""
        return self.graph.as_network() if self.graph.is_chain() else None


def input_exponent(max_abs_input: float, bits: int) -> int:
    """The smallest e with ``max_abs_input <= (2^(bits-1) - 1) 2^e``: the graded input's exponent."""
    return block_exponent(max_abs_input, (1 << (bits - 1)) - 1)


def _graded_input_exponent(layers: list[LoihiLayer], bits: int, x: Tensor | None,
                           generator: torch.Generator) -> tuple[int, int]:
    """(the input's exponent, the exponent its range alone asks for): the smallest that holds the
    largest |x| of ``x`` in ``bits``, raised until the first layer's current stays below
    `INPUT_CURRENT_HEADROOM` weight units on ``x`` (module docstring)."""
    if x is None:
        return (e := input_exponent(1.0, bits)), e
    by_range = input_exponent(float(x.abs().max()), bits)
    e = by_range
    x0 = x.reshape(-1, *x.shape[2:]).double() if x.dim() > 4 else x.double()
    for node in layers:
        branches = [b for b in node.branches if b.source.node == INPUT and not b.identity]
        if not branches:
            continue
        floats = [_float_layer(b, generator) for b in branches]
        params = _neuron(node)
        max_abs = max(float(conv.weight.abs().max()) for conv, _ in floats)
        unit = 2.0 ** (_node_exponent(max_abs, params, None) - 1)
        with torch.no_grad():
            current = sum(_apply(_FloatConv(conv.weight, None, conv.stride, conv.padding, conv.dilation, conv.groups),
                                 x0.reshape(len(x0), *(in_shape if len(in_shape) == 3 else (-1, 1, 1))))
                          for conv, in_shape in floats)
        peak = float(current.abs().max()) / unit  # a_in at input exponent 0, in weight units
        while peak / 2.0**e > INPUT_CURRENT_HEADROOM:
            e += 1
    return e, by_range


def quantize_model(model: SpikingModel, input_shape: tuple[int, ...], timesteps: int,
                   readout_range: Callable[[SpikingModel], float] | float | None = None, input_bits: int = 0,
                   calibration_input: Tensor | None = None) -> QuantizedModel:
    """Fold ``model``, trace it and quantize its graph (module docstring, `quantize_graph`).

    Args:
        model: the trained spiking model.
        input_shape: one sample, (C, H, W).
        readout_range: the largest |sum_t output| of the folded float model on calibration data, or
            a function of the folded model that measures it; None skips the readout's range check.
        timesteps, input_bits, calibration_input: as `quantize_graph`'s.

    Raises:
        UnsupportedLayerError: a module or node Loihi cannot express (named by its path).
        WeightOverflowError: weights too large for the fixed point at the layer's threshold.
        ExportError: the ANN twin; a layer whose weights are all zero.
    """
    if not getattr(model, "spiking", True):
        raise ExportError("this checkpoint holds the ANN twin (--stage ann: ReLU in place of spiking neurons), and Loihi "
                          "runs spiking neurons: export a spiking checkpoint, e.g. one trained from it with "
                          "`snnpipe train --stage bptt --init CKPT`")
    folded = fold_batchnorm(model)
    with naming_nodes(folded):
        graph = traced(folded, input_shape)
        if callable(readout_range):
            readout_range = readout_range(folded)
        return quantize_graph(graph, timesteps, readout_range, input_bits, calibration_input,
                              delay_shift=bool(getattr(model, "delay_shift", False)))


def quantize_graph(graph: ir.Graph, timesteps: int, readout_range: float | None = None, input_bits: int = 0,
                   calibration_input: Tensor | None = None, delay_shift: bool = False) -> QuantizedModel:
    """Quantize a graph of the typed IR, BatchNorm folded (module docstring).

    Args:
        graph: the network; its Input's shape is one sample.
        timesteps: T of the input: the readout's bias is scaled by T / (T + depth).
        readout_range: the largest |sum_t output| of the float network on calibration data; None
            skips the readout's range check.
        input_bits: 0 for binary input spikes; else the bits of the graded (direct) input.
        calibration_input: (T, B, *input_shape) input that sets the graded input's exponent (its
            range and the first layer's current); None assumes |x| <= 1.
        delay_shift: the float network runs in Loihi's timing (also where the graph's metadata
            says so, ``delay_shift``, as the tracer writes it).

    Raises:
        UnsupportedLayerError: a node or parameter Loihi cannot express, named.
        WeightOverflowError: weights too large for the fixed point at the layer's threshold.
        ExportError: a layer whose weights are all zero.
    """
    layers = loihi_layers(graph)
    input_shape = tuple(graph.nodes[graph.input].shape)
    generator = torch.Generator().manual_seed(0)
    input_exp, range_exp = _graded_input_exponent(layers, input_bits, calibration_input, generator) if input_bits else (0, 0)
    delay_shift = delay_shift or bool(graph.metadata.get("delay_shift"))
    depth: dict[str, int] = {INPUT: 0}
    nodes: list[GraphNode] = []
    quants: list[LayerQuantization] = []
    relays: dict[tuple[str, int], str] = {}
    for node in layers:
        floats = []
        for branch in node.branches:
            if branch.identity:
                floats.append(None)
                continue
            conv, in_shape = _float_layer(branch, generator)
            if branch.source.node == INPUT and input_bits:
                conv = _FloatConv(conv.weight * 2.0**input_exp, conv.bias, conv.stride, conv.padding, conv.dilation,
                                  conv.groups)
            floats.append((conv, in_shape))
        node_depth = max(depth[b.source.node] for b in node.branches) + 1
        graph_node, quant = _quantize_node(node, floats, timesteps, node_depth, readout_range, delay_shift)
        for connection, branch in zip(graph_node.connections, node.branches):
            missing = node_depth - 1 - depth[connection.source]
            if missing and connection.source == INPUT and input_bits:
                raise UnsupportedLayerError(branch.path, branch.layer or graph.nodes[graph.input], TARGET,
                                            "a branch from graded input would need a relay, and relays carry spikes")
            for k in range(1, missing + 1):  # relays of the source, shared by the branches that need them
                if (connection.source, k) not in relays:
                    source = relays.get((connection.source, k - 1), connection.source)
                    relay = relay_node(connection.source, _node_shape(nodes, input_shape, connection.source), k)
                    relay.connections[0].source = source
                    nodes.append(relay)
                    quants.append(_relay_quantization(relay))
                    depth[relay.name] = depth[connection.source] + k
                    relays[(connection.source, k)] = relay.name
            if missing:
                connection.source = relays[(connection.source, missing)]
        nodes.append(graph_node)
        quants.append(quant)
        depth[graph_node.name] = node_depth
    try:
        loihi = LoihiGraph(input_shape, nodes, input_bits, input_exp)
    except ValueError as err:  # pragma: no cover - shapes and depths come from the graph's own
        raise ExportError(f"the graph's layers do not form a Loihi graph: {err}") from None
    return QuantizedModel(loihi, quants, range_exp)


def _node_shape(nodes: list[GraphNode], input_shape: tuple[int, ...], name: str) -> tuple[int, ...]:
    return tuple(input_shape) if name == INPUT else next(n.out_shape for n in nodes if n.name == name)
