"""Input encodings: hand-checkable values for direct, rate and latency."""

from __future__ import annotations

import pytest
import torch

from snnpipe.pipeline.encoding import ENCODINGS, EncodingError, encode, register_encoding


def seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def image(*pixels: float) -> torch.Tensor:
    """A 1x1x2x2 batch: one image, one channel, pixels in row-major order."""
    return torch.tensor(pixels).view(1, 1, 2, 2)


@pytest.mark.parametrize("name", sorted(ENCODINGS))
def test_every_encoding_returns_time_major_float32(name: str):
    x = torch.rand(2, 3, 4, 5, generator=seeded(), dtype=torch.float64)
    out = encode(x, name, 6, [0.5, 0.4, 0.3], [0.2, 0.3, 0.4], seeded())
    assert out.shape == (6, 2, 3, 4, 5) and out.dtype == torch.float32


def test_direct_normalizes_and_repeats():
    out = encode(image(0.5, 1.0, 0.0, 0.75), "direct", 3, [0.5], [0.25])
    expected = torch.tensor([[0.0, 2.0], [-2.0, 1.0]])  # (x - 0.5) / 0.25
    assert out.shape == (3, 1, 1, 2, 2)
    for t in range(3):
        assert torch.equal(out[t, 0, 0], expected)
    assert out.stride(0) == 0  # one image shared by all steps; models compute the first layer once
    assert torch.equal(out.contiguous().sum(0)[0, 0], 3 * expected)


def test_direct_normalizes_each_channel_with_its_own_statistics():
    x = torch.full((1, 2, 1, 1), 0.5)
    out = encode(x, "direct", 1, [0.0, 0.5], [1.0, 0.25])
    assert out.flatten().tolist() == [0.5, 0.0]


def test_rate_with_probability_zero_or_one_is_exact():
    x = image(0.0, 1.0, 1.0, 0.0)
    out = encode(x, "rate", 4, [0.5], [0.25], seeded())
    assert torch.equal(out, x.expand(4, 1, 1, 2, 2))


def test_rate_fires_with_probability_x_and_ignores_normalization():
    x = torch.full((1, 1, 100, 100), 0.3)
    out = encode(x, "rate", 20, [0.5], [0.25], seeded(7))
    assert set(out.unique().tolist()) <= {0.0, 1.0}
    assert out.mean().item() == pytest.approx(0.3, abs=0.02)
    assert torch.equal(out, encode(x, "rate", 20, [0.0], [1.0], seeded(7)))
    assert not torch.equal(out, encode(x, "rate", 20, [0.5], [0.25], seeded(8)))


def test_latency_brighter_pixels_spike_earlier_exactly_once():
    out = encode(image(1.0, 0.5, 0.0, 0.25), "latency", 5, [0.5], [0.25])[:, 0, 0].reshape(5, 4)
    # t = round((1 - x) * (5 - 1)): 0, 2, never, 3
    assert out.sum(0).tolist() == [1.0, 1.0, 0.0, 1.0]
    assert [out[:, i].argmax().item() for i in (0, 1, 3)] == [0, 2, 3]


def test_latency_with_one_step_fires_every_lit_pixel_at_once():
    out = encode(image(1.0, 0.5, 0.0, 0.01), "latency", 1, [0.5], [0.25])
    assert out.flatten().tolist() == [1.0, 1.0, 0.0, 1.0]


def test_latency_matches_snntorch_linear_code():
    spikegen = pytest.importorskip("snntorch.spikegen")
    x = torch.rand(3, 1, 4, 4, generator=seeded(2))
    x[0, 0, 0] = torch.tensor([0.0, 1.0, 0.5, 1 / 6])  # a dark pixel and rounding ties at T = 4
    for timesteps in (1, 4, 9):
        reference = spikegen.latency(
            x, num_steps=timesteps, linear=True, normalize=True, clip=True, threshold=1e-9
        )
        assert torch.equal(encode(x, "latency", timesteps, [0.5], [0.25]), reference)


def test_bad_timesteps_encoding_or_statistics_raise_encoding_error():
    x = image(0.1, 0.2, 0.3, 0.4)
    with pytest.raises(EncodingError, match="timesteps=0"):
        encode(x, "rate", 0, [0.5], [0.25])
    with pytest.raises(EncodingError, match="choose one of direct, rate, latency"):
        encode(x, "phase", 4, [0.5], [0.25])
    with pytest.raises(EncodingError, match="one value per channel"):
        encode(x, "direct", 4, [0.5, 0.5], [0.25, 0.25])


def test_register_encoding_refuses_a_duplicate():
    with pytest.raises(ValueError, match="'rate' is already registered"):
        register_encoding("rate")(lambda x, timesteps, mean, std, generator: x)
    spikes = encode(image(0.5, 0.5, 0.5, 0.5), "rate", 64, [0.5], [0.25], torch.Generator().manual_seed(0))
    assert set(spikes.unique().tolist()) == {0.0, 1.0}  # still Bernoulli spikes, not the refused identity
