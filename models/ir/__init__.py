"""The typed graph at the centre: NIR-shaped nodes in snnpipe's discrete time, and the graph of them.

Every importer, exporter and builder is a ``{node type: mapper}`` table over this graph (NIR both
ways, Loihi, ONNX, the ``nn.Module`` builder), and one tracer (`snnpipe.models.tracer`) turns a model
into it. One step per timestep; decays are fractions per step (SPEC §2, `models.neurons`). A node
with several incoming edges gets their sum (NIR's convention: a residual add is two edges into one
node).

The nodes, one sample each (no batch or time axis in any shape)::

    Input(shape)  Output(shape)                      the graph's ends
    Affine(weight[out, in], bias[out] | None)        y = W x + b      (NIR's Linear: bias None)
    Conv1d(weight[out, in/groups, k], ...)           PyTorch's Conv1d on (C, L)
    Conv2d(weight[out, in/groups, kh, kw], bias, stride, padding, dilation, groups)   on (C, H, W)
    SumPool2d / AvgPool2d(kernel_size, stride, padding)   sum / mean over each window, zero padding
    Flatten(start_dim, end_dim)                      dims of one sample
    CubaLIF(current_decay a_u, voltage_decay a_v, threshold theta, reset, refractory_steps,
            v_leak, v_reset, bias)                   the spiking neuron:
        u[t] = (1 - a_u) u[t-1] + x[t]
        v[t] = (1 - a_v) v[t-1] + a_v v_leak + u[t] + bias
        s[t] = v[t] > theta;  then v = v_reset (reset "zero") or v - theta (reset "subtract")
        `LIF` and `IF` build the CubaLIF with a_u = 1 (and a_v = 0 for IF).
    CubaLI(current_decay, voltage_decay, gain, v_leak, bias)   the same without spikes; the output
        is v[t], with v[t] = (1 - a_v) v[t-1] + a_v v_leak + gain u[t] + bias (`LI`: a_u = 1)
    Integrator(gain)                                 v[t] = v[t-1] + gain x[t]  (NIR's I)
    Threshold(threshold)                             s = x > threshold          (NIR's Threshold)
    Scale(scale)                                     y = scale x
    Delay(steps)                                     y[t] = x[t - steps] (0 before the first step)

Parameters are floats or numpy float arrays; an array is per neuron and must broadcast to the
node's shape (NIR allows it; a consumer that holds one value per layer refuses it by name). Each node
checks its fields on construction and raises `ValueError` naming the field and the value.

`NODE_TYPES` is the one ``{type name: class}`` table, filled by `register_node` on each class (one
family of nodes per file here): `Graph.to_data` and `Graph.from_data` write and read the plain types
a checkpoint's ``model_args`` hold (lists, floats), and the NIR mappers key on the same names.
"""

from __future__ import annotations

from snnpipe.models.ir.graph import Delay, Graph, Input, Output
from snnpipe.models.ir.neurons import IF, LI, LIF, RESETS, CubaLI, CubaLIF, Integrator, Threshold
from snnpipe.models.ir.node import NODE_TYPES, Node, Param, Shape, node_fields, register_node
from snnpipe.models.ir.pooling import AvgPool2d, Flatten, SumPool2d
from snnpipe.models.ir.synapses import Affine, Conv1d, Conv2d, Scale

#: The node types that hold state across timesteps, and those that weight their input (`Node.ROLE`).
NEURONS = tuple(cls for cls in NODE_TYPES.values() if cls.ROLE == "neuron")
SYNAPSES = tuple(cls for cls in NODE_TYPES.values() if cls.ROLE == "synapse")

__all__ = ["NODE_TYPES", "NEURONS", "RESETS", "SYNAPSES", "Affine", "AvgPool2d", "Conv1d", "Conv2d", "CubaLI", "CubaLIF",
           "Delay", "Flatten", "Graph", "IF", "Input", "Integrator", "LI", "LIF", "Node", "Output", "Param", "Scale", "Shape",
           "SumPool2d", "Threshold", "node_fields", "register_node"]
