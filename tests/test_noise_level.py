"""The blind noise-level estimate, and deq-gap's noise level that follows it."""

from __future__ import annotations

import pytest
import torch

from scicli.methods.deq_gap import SIGMA_CAP, DEQGap
from scicli.physics import VideoSCI
from scicli.priors.noise import noise_level

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def smooth(h: int = 64, w: int = 64) -> torch.Tensor:
    yy, xx = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    return 0.5 + 0.3 * torch.sin(3 * xx) * torch.cos(2 * yy)


@pytest.mark.parametrize("std", [5 / 255, 25 / 255, 50 / 255])
def test_the_estimate_recovers_the_std_of_white_noise_on_a_smooth_image(std: float) -> None:
    g = torch.Generator().manual_seed(0)
    noisy = smooth(128, 128) + std * torch.randn(128, 128, generator=g)
    assert float(noise_level(noisy)) == pytest.approx(std, rel=0.08)


def test_a_smooth_image_has_almost_no_noise_and_shapes_follow_the_leading_axes() -> None:
    x = smooth(33, 41).expand(2, 3, 33, 41)  # odd sizes: the last row and column are left out
    level = noise_level(x)
    assert level.shape == (2, 3) and float(level.max()) < 1 / 255


def test_deq_gap_estimate_mode_sets_sigma_per_frame_from_the_step_and_caps_it() -> None:
    model = DEQGap(frames=2, channels=(8,), sigma=5 / 255, sigma_mode="estimate", gain=2.0)
    g = torch.Generator().manual_seed(1)
    v = torch.stack([smooth(), smooth() + 20 / 255 * torch.randn(64, 64, generator=g)])[None]
    sig = model.noise_levels(v).detach()
    assert sig.shape == (2,)
    assert float(sig[0]) == pytest.approx(5 / 255, abs=1 / 255)  # the floor
    assert float(sig[1]) == pytest.approx(5 / 255 + 2 * 20 / 255, rel=0.1)  # floor + gain x estimate
    loud = smooth() + 0.5 * torch.randn(64, 64, generator=g)
    assert float(model.noise_levels(loud[None, None].expand(1, 2, 64, 64)).detach().max()) == pytest.approx(SIGMA_CAP)


def test_the_fixed_mode_keeps_old_weights_loadable_and_has_no_gain() -> None:
    old = DEQGap(frames=2, channels=(8,))
    assert "sigma_mode" not in old.config and not hasattr(old, "log_gain")
    new = DEQGap(frames=2, channels=(8,), sigma_mode="estimate")
    assert new.config["sigma_mode"] == "estimate" and "log_gain" in dict(new.named_parameters())
    assert DEQGap.Options().sigma_mode == "estimate"  # what scicli train uses for a new run


def test_without_the_correction_the_learned_parts_are_the_noise_levels_floor_and_gain() -> None:
    """``correction=none``: x' = FFDNet(v, sigma(v)), the same map as an untrained (zero-head)
    U-Net correction, with two learned numbers that a checkpoint carries alone."""
    torch.manual_seed(0)
    with_net = DEQGap(frames=2, channels=(8,), sigma=6 / 255, sigma_mode="estimate", gain=1.5)
    bare = DEQGap(frames=2, channels=(8,), sigma=6 / 255, sigma_mode="estimate", gain=1.5, correction="none")
    assert bare.net is None and bare.config["correction"] == "none" and "correction" not in with_net.config
    assert sorted(n for n, p in bare.named_parameters() if p.requires_grad) == ["log_gain", "log_sigma"]
    assert set(bare.state_dict()) == {"log_sigma", "log_gain"}  # the frozen FFDNet is never stored
    g = torch.Generator().manual_seed(2)
    # (x_1, x_2, e): smooth frames with mild noise, so that sigma stays below its cap
    z = torch.cat([smooth(32, 32).expand(1, 2, 32, 32) + 10 / 255 * torch.randn(1, 2, 32, 32, generator=g),
                   torch.zeros(1, 1, 32, 32)], dim=1)
    op = VideoSCI((torch.rand(2, 32, 32, generator=g) > 0.5).float())
    y = op.A(smooth(32, 32).expand(1, 2, 32, 32))  # a consistent snapshot: the step stays mildly noisy
    assert float(bare.noise_levels(bare.gap_step(z, op, y)[1]).max()) < SIGMA_CAP
    with torch.no_grad():
        assert torch.allclose(bare.f(z, op, y), with_net.f(z, op, y), atol=1e-6)
    loss = bare.f(z, op, y)[:, :2].square().mean()
    loss.backward()
    assert bare.log_sigma.grad is not None and bare.log_gain.grad is not None
    assert bare.log_gain.grad.abs() > 0
    with pytest.raises(ValueError, match="correction"):
        DEQGap(frames=2, channels=(8,), prior="none", correction="none")
