"""The ``memory`` energy model, after Lemaire et al., "An analytical estimation of spiking neural
networks energy efficiency", ICONIP 2022 (arXiv 2210.13107): arithmetic, addressing, and every
memory access priced by the size of the memory that holds it.

Per synaptic layer, T steps, precision P (`hw_targets/precision.py`: add, mult, weight bits ``w``,
activation bits ``a``, state bits ``v``), ``acc(S)``: one 64-bit access to a memory of S bytes
(`hw_targets/memory.py`: Horowitz's SRAM by size, DRAM beyond 1 MB), ``B = bits / 64`` accesses:

Every layer with a bias (bias_adds = outputs * T):

    compute      = bias_adds * P.add
    memory       = bias_adds * w/64 * acc(weights)            (each add fetches its bias)

Event-driven input (spikes; E input events, fan-out K = C_out/groups x kernel or the outputs):

    compute      = ACs * P.add
    addressing   = E * K * INT32.add + [conv] 2 * E * INT32.mac   (each spike: K target addresses,
                                                                   two multiplies to find the first)
    memory       = E * K * w/64 * acc(weights)                (each spike fetches its K weights)
                 + E * 32/64 * acc(FIFO)                      (a spike is a 32-bit address event)
    neuron_state = 2 * E * K * v/64 * acc(outputs * v/8)      (each synaptic op reads and writes
                                                               its target's potential)

Dense input (graded values: the first layer under direct encoding, every ANN layer; M MACs in
S = M / dense_macs dense passes of one sample: T for a layer graded at every step):

    compute      = M * P.mac
    addressing   = S * (inputs + outputs + [conv] C_out * kernel) * INT32.add
    memory       = M * w/64 * acc(weights)                    (a weight read per MAC)
                 + [conv] M * a/64 * acc(inputs * a/8)        (an input read per MAC: no reuse)
                 + [dense] S * inputs * a/64 * acc(inputs * a/8)
                 + [ANN] S * outputs * a/64 * acc(outputs * a/8)   (outputs written)

A layer whose input is spikes at some samples' steps and graded at others (`counting` decides per
sample) has both parts, each priced on its own counts, and its bias terms once.

Per neuron layer of an SNN (N neurons, s state variables each, ``state_size`` = N s):

    compute      = updates * s * P.mac + spikes * P.add      (each state variable decays: a
                                                              multiply-add; a spike resets)
    neuron_state = 2 * state_size * T * v/64 * acc(state_size * v/8)   (read and write every step)
    memory       = spikes * 32/64 * acc(FIFO)                 (each spike leaves as an event)

An ANN's activation function costs nothing here (Lemaire prices the synaptic layers' writes).

Constants: INT32 add 0.1 pJ and multiply 3.1 pJ for the address arithmetic (Horowitz 2014, as
Lemaire et al. use 32-bit integer operations), a spike event of 32 bits (``EVENT_BITS``) in a FIFO of
1000 events (``FIFO_EVENTS``; Lemaire et al.'s experiments, SpikingJelly 2's
``snn_fifo_capacity_elements`` default). The ranges come from the memory costs alone
(`MemoryModel.access_range_pj`: the neighbouring SRAM sizes, DRAM 1.3 to 2.6 nJ).
Where this differs from SpikingJelly 2's ``LemaireEnergyProfiler``: docs/energy-models.md, "Against SpikingJelly 2's Lemaire estimator".
"""

from __future__ import annotations

from snnpipe.hw_targets.memory import HOROWITZ_45NM, MemoryModel
from snnpipe.hw_targets.precision import PRECISIONS, Precision
from snnpipe.pipeline.profile.estimators.base import ZERO, NetworkView, Priced, Span, register_energy_model

#: Address arithmetic: 32-bit integers (Lemaire et al. 2022; Horowitz 2014: add 0.1 pJ, mult 3.1 pJ).
ADDRESS = PRECISIONS["int32"]
#: Bits of one spike event, an address word (Lemaire et al. 2022; SpikingJelly 2: 4-byte accesses).
EVENT_BITS = 32
#: Events an input or output FIFO holds (Lemaire et al. 2022's experiments; SpikingJelly 2's default).
FIFO_EVENTS = 1000


def access(memory: MemoryModel, size_bytes: float) -> Span:
    """pJ per 64-bit access to a memory of ``size_bytes``, with its range."""
    return Span(*memory.access_range_pj(size_bytes))


@register_energy_model("memory", "Lemaire et al. 2022: arithmetic, addressing, weight/input/output traffic by memory size, neuron state")
def price_memory(net: NetworkView, precision: Precision, memory: MemoryModel = HOROWITZ_45NM, **_: object) -> Priced:
    """Price ``net`` at ``precision`` (module docstring)."""
    P, T = precision, net.timesteps
    w, a, v = P.bits, P.act_bits, P.state_bits
    fifo = access(memory, FIFO_EVENTS * EVENT_BITS / 8)
    layers: dict[str, dict[str, Span]] = {}
    for s in net.synapses:
        weights = access(memory, (s.weights + s.biases) * w / 8)
        bias_adds = s.outputs * T if s.biases else 0
        conv = s.kernel > 0
        terms = {"compute": Span.of(bias_adds * P.add_pj), "addressing": ZERO, "memory": bias_adds * w / 64 * weights}
        parts = []
        if net.event_driven(s):
            fetched = s.input_events * s.kernel_fanout
            parts.append({
                "compute": Span.of(s.acs * P.add_pj),
                "addressing": Span.of(fetched * ADDRESS.add_pj + (2 * s.input_events * ADDRESS.mac_pj if conv else 0.0)),
                "memory": fetched * w / 64 * weights + s.input_events * EVENT_BITS / 64 * fifo,
                "neuron_state": 2 * fetched * v / 64 * access(memory, s.outputs * v / 8),
            })
        if s.dense_driven:
            passes = s.macs / max(s.dense_macs, 1)
            inputs = access(memory, s.inputs * a / 8)
            kernels = s.weights // max(s.fan_in, 1) * s.kernel if conv else 0  # C_out x kernel
            reads = s.macs if conv else passes * s.inputs
            traffic = s.macs * w / 64 * weights + reads * a / 64 * inputs
            if not net.spiking:
                traffic = traffic + passes * s.outputs * a / 64 * access(memory, s.outputs * a / 8)
            parts.append({
                "compute": Span.of(s.macs * P.mac_pj),
                "addressing": Span.of(passes * (s.inputs + s.outputs + kernels) * ADDRESS.add_pj),
                "memory": traffic,
            })
        for part in parts:
            for term, value in part.items():
                terms[term] = terms.get(term, ZERO) + value
        layers[s.name] = terms
    if net.spiking:
        for n in net.neurons:
            per_neuron = n.state_size // max(n.neurons, 1)
            layers[n.name] = {
                "compute": Span.of(n.neuron_updates * per_neuron * P.mac_pj + n.spikes * P.add_pj),
                "neuron_state": 2 * n.state_size * T * v / 64 * access(memory, n.state_size * v / 8),
                "memory": n.spikes * EVENT_BITS / 64 * fifo,
            }
    return Priced(layers)
