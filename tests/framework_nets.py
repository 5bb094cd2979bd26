"""A conv net and a residual net written in each framework, as its users write them, with the loop
that runs each over a (T, B, C, H, W) sequence: the fixtures of the framework tests.

Both nets take digits' 1x8x8 images and end in a linear readout (no neuron: the logits are its output
averaged over the steps, as the zoo's readout)::

    conv:      conv 1->8 3x3, LIF, avgpool 2, conv 8->16 3x3, LIF, avgpool 2, flatten, linear 64->10
    residual:  conv 1->8 3x3, LIF, [conv 8->8, LIF, conv 8->8] + identity, LIF, avgpool 2, flatten, linear 128->10

Sinabs' nets pool by sums (``sinabs.layers.SumPool2d``, the pooling its chips and its NIR writer
take), the others by averages. The neurons are each framework's leaky integrate-and-fire with a hard reset to 0 where it has one
(what Loihi's CUBA neuron does): snnTorch ``Leaky``, SpikingJelly ``LIFNode`` (single step), Norse
``LIFBoxCell`` (no synaptic current, as the others),
Sinabs ``LIFSqueeze`` with ``SingleSpike`` and ``MembraneReset`` (the (B*T, ...) layout its convs take).
"""

from __future__ import annotations

from typing import Callable

import pytest
import torch
from torch import Tensor, nn

FRAMEWORKS = ("snntorch", "spikingjelly", "norse", "sinabs")
KINDS = ("conv", "residual")
INPUT_SHAPE = (1, 8, 8)
THRESHOLD = 1.0
#: Per-step voltage decay of every net's LIF (snnTorch beta = 0.75, SpikingJelly tau = 4 ...).
VOLTAGE_DECAY = 0.25


def _neuron(framework: str, timesteps: int) -> Callable[[], nn.Module]:
    """A factory of the framework's LIF with voltage decay `VOLTAGE_DECAY` per step, a hard reset to 0."""
    if framework == "snntorch":
        import snntorch as snn

        return lambda: snn.Leaky(beta=1 - VOLTAGE_DECAY, threshold=THRESHOLD, reset_mechanism="zero", init_hidden=True)
    if framework == "spikingjelly":
        from spikingjelly.activation_based import neuron

        return lambda: neuron.LIFNode(tau=1 / VOLTAGE_DECAY, decay_input=False, v_threshold=THRESHOLD, v_reset=0.0)
    if framework == "norse":
        import norse.torch as norse

        # dt * tau_mem_inv = VOLTAGE_DECAY; the input is scaled by the same factor (v_th to match)
        params = norse.LIFBoxParameters(tau_mem_inv=torch.tensor(VOLTAGE_DECAY / 1e-3), v_th=torch.tensor(THRESHOLD * VOLTAGE_DECAY))
        return lambda: norse.LIFBoxCell(params)
    if framework == "sinabs":
        import math

        import sinabs.layers as sl
        from sinabs.activation import MembraneReset, SingleSpike

        # alpha = exp(-1/tau_mem) = 1 - VOLTAGE_DECAY; norm_input=False: the input is not scaled
        tau_mem = -1 / math.log(1 - VOLTAGE_DECAY)
        return lambda: sl.LIFSqueeze(tau_mem=tau_mem, spike_threshold=THRESHOLD, spike_fn=SingleSpike,
                                     reset_fn=MembraneReset(), norm_input=False, num_timesteps=timesteps)
    raise ValueError(framework)


def _layers(framework: str):
    """The framework's own conv / pool / flatten / linear classes where it has them (SpikingJelly's
    ``layer`` package: single-step wrappers of torch's; Sinabs' ``SumPool2d``), else torch's."""
    if framework == "spikingjelly":
        from spikingjelly.activation_based import layer

        return layer.Conv2d, layer.AvgPool2d, layer.Flatten, layer.Linear
    if framework == "sinabs":  # Sinabs pools by sums (as its chips do)
        import sinabs.layers as sl

        return nn.Conv2d, sl.SumPool2d, nn.Flatten, nn.Linear
    return nn.Conv2d, nn.AvgPool2d, nn.Flatten, nn.Linear


class Residual(nn.Module):
    """The residual net for snnTorch, SpikingJelly and Sinabs, whose neurons keep their own state."""

    def __init__(self, framework: str, timesteps: int) -> None:
        super().__init__()
        conv, pool, flatten, linear = _layers(framework)
        lif = _neuron(framework, timesteps)
        self.conv0, self.lif0 = conv(1, 8, 3, padding=1), lif()
        self.conv1, self.lif1 = conv(8, 8, 3, padding=1), lif()
        self.conv2, self.lif2 = conv(8, 8, 3, padding=1), lif()
        self.pool, self.flatten, self.fc = pool(2), flatten(), linear(8 * 4 * 4, 10)

    def forward(self, x: Tensor) -> Tensor:
        z0 = self.lif0(self.conv0(x))
        z2 = self.lif2(self.conv2(self.lif1(self.conv1(z0))) + z0)
        return self.fc(self.flatten(self.pool(z2)))


class NorseResidual(nn.Module):
    """The residual net in Norse's style: the cells' states go in and out of ``forward``."""

    def __init__(self) -> None:
        super().__init__()
        lif = _neuron("norse", 0)
        self.conv0, self.lif0 = nn.Conv2d(1, 8, 3, padding=1), lif()
        self.conv1, self.lif1 = nn.Conv2d(8, 8, 3, padding=1), lif()
        self.conv2, self.lif2 = nn.Conv2d(8, 8, 3, padding=1), lif()
        self.pool, self.flatten, self.fc = nn.AvgPool2d(2), nn.Flatten(), nn.Linear(8 * 4 * 4, 10)

    def forward(self, x: Tensor, state: tuple | None = None) -> tuple[Tensor, tuple]:
        s0, s1, s2 = state if state is not None else (None, None, None)
        z0, s0 = self.lif0(self.conv0(x), s0)
        z1, s1 = self.lif1(self.conv1(z0), s1)
        z2, s2 = self.lif2(self.conv2(z1) + z0, s2)
        return self.fc(self.flatten(self.pool(z2))), (s0, s1, s2)


def build(framework: str, kind: str, timesteps: int, seed: int = 0) -> nn.Module:
    """The ``kind`` net (`KINDS`) of ``framework`` (`FRAMEWORKS`), seeded; skips where it is not installed."""
    pytest.importorskip({"snntorch": "snntorch", "spikingjelly": "spikingjelly.activation_based",
                         "norse": "norse.torch", "sinabs": "sinabs.layers"}[framework])
    torch.manual_seed(seed)
    if kind == "residual":
        return NorseResidual() if framework == "norse" else Residual(framework, timesteps)
    conv, pool, flatten, linear = _layers(framework)
    lif = _neuron(framework, timesteps)
    layers = (conv(1, 8, 3, padding=1), lif(), pool(2), conv(8, 16, 3, padding=1), lif(), pool(2), flatten(),
              linear(16 * 2 * 2, 10))
    if framework == "norse":
        import norse.torch as norse

        return norse.SequentialState(*layers)
    return nn.Sequential(*layers)


def reset(framework: str, net: nn.Module) -> None:
    """Every neuron of ``net`` back to rest, the framework's own way (Norse's state lives outside the net)."""
    if framework == "snntorch":
        from snntorch.utils import reset as snntorch_reset

        snntorch_reset(net)
    elif framework == "spikingjelly":
        from spikingjelly.activation_based import functional

        functional.reset_net(net)
    elif framework == "sinabs":
        import sinabs

        sinabs.reset_states(net)


def run(framework: str) -> Callable[[nn.Module, Tensor], Tensor]:
    """``run(net, x) -> logits``: the net over x (T, B, ...) from rest, the readout averaged over T."""
    if framework == "sinabs":  # every layer takes the whole sequence at once, batch-major, (B*T, ...)
        def sinabs_run(net: nn.Module, x: Tensor) -> Tensor:
            reset(framework, net)
            out = net(x.transpose(0, 1).flatten(0, 1))
            return out.unflatten(0, (x.shape[1], x.shape[0])).mean(1)
        return sinabs_run
    if framework == "norse":
        def norse_run(net: nn.Module, x: Tensor) -> Tensor:
            state, outs = None, []
            for x_t in x:
                out, state = net(x_t, state)
                outs.append(out)
            return torch.stack(outs).mean(0)
        return norse_run

    def step_run(net: nn.Module, x: Tensor) -> Tensor:
        reset(framework, net)
        return torch.stack([net(x_t) for x_t in x]).mean(0)
    return step_run


#: The data every fine-tune and accuracy uses: digits, direct encoding, its split of seed 0, mean 0 and
#: std 1 (the images as they are, scaled to [0, 1]).
DATASET, ENCODING, MEAN, STD = "digits", "direct", (0.0,), (1.0,)


def fine_tune(framework: str, net: nn.Module, timesteps: int, epochs: int, seed: int = 0, lr: float = 5e-3) -> nn.Module:
    """Train ``net`` on digits in its own framework (surrogate gradients, Adam, cross-entropy on the
    readout averaged over T), seeded; returns it in eval mode."""
    from snnpipe.pipeline.data import iterate_batches, load_dataset
    from snnpipe.pipeline.encoding import encode

    data = load_dataset(DATASET, seed=0)
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(net.parameters(), lr=lr)
    forward = run(framework)
    net.train()
    for _ in range(epochs):
        for x, y in iterate_batches(data.train_x, data.train_y, 32, shuffle=True, generator=generator):
            loss = nn.functional.cross_entropy(forward(net, encode(x, ENCODING, timesteps, MEAN, STD)), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return net.eval()


def accuracy(framework: str, net: nn.Module, timesteps: int) -> float:
    """Percent of digits' test set the framework's own model classifies correctly."""
    from snnpipe.pipeline.data import load_dataset
    from snnpipe.pipeline.encoding import encode

    data = load_dataset(DATASET, seed=0)
    with torch.no_grad():
        logits = run(framework)(net.eval(), encode(data.test_x, ENCODING, timesteps, MEAN, STD))
    return 100.0 * float((logits.argmax(1) == data.test_y).float().mean())


def record(framework: str, net: nn.Module, x: Tensor) -> dict[str, Tensor]:
    """The spikes of every neuron layer of ``net`` over x (T, B, ...) from rest, by module path, each
    (T, B, ...) whatever the framework's layout."""
    from snnpipe.pipeline.profile.frameworks import neuron_layers

    steps, batch = x.shape[:2]
    recorded: dict[str, list[Tensor]] = {}
    handles = [module.register_forward_hook(
        lambda _m, _i, out, path=path, entry=entry: recorded.setdefault(path, []).append(entry.spikes(out).detach().clone()))
        for path, (module, entry) in neuron_layers(net).items()]
    try:
        with torch.no_grad():
            run(framework)(net.eval(), x)
    finally:
        for handle in handles:
            handle.remove()
    if framework == "sinabs":  # one call on (B*T, ...), batch-major
        return {path: calls[0].unflatten(0, (batch, steps)).transpose(0, 1) for path, calls in recorded.items()}
    return {path: torch.stack(calls) for path, calls in recorded.items()}


def spiking(net: nn.Module, scale: float = 3.0, seed: int = 0) -> nn.Module:
    """``net`` with its conv and linear weights scaled up, so that every layer spikes on random input."""
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                module.weight.mul_(scale)
    return net
