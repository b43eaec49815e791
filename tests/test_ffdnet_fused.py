"""FFDNet's inference path fuses each convolution with its ReLU (one oneDNN call) and gives the
same numbers as the layers run one by one; with autograd on, the layers run one by one and the
gradient reaches the input (deq-gap differentiates through the denoiser)."""

from __future__ import annotations

import pytest
import torch

import scicli.nets.ffdnet as ffdnet_net
from scicli.priors import DENOISERS

pytestmark = [
    pytest.mark.usefixtures("one_torch_thread"),
    pytest.mark.skipif(ffdnet_net.CONV_RELU is None, reason="this torch has no fused oneDNN convolution"),
]


@pytest.fixture(scope="module")
def ffdnet():  # noqa: ANN201
    return DENOISERS.get("ffdnet").factory()


def layer_by_layer(fn):  # noqa: ANN001, ANN201
    fused, ffdnet_net.CONV_RELU = ffdnet_net.CONV_RELU, None
    try:
        return fn()
    finally:
        ffdnet_net.CONV_RELU = fused


@pytest.mark.parametrize("shape", [(1, 3, 32, 40), (2, 2, 17, 23)])  # odd sizes: padded and cropped back
def test_fused_inference_gives_the_layer_by_layer_output(ffdnet, shape: tuple[int, ...]) -> None:  # noqa: ANN001
    x = torch.rand(*shape, generator=torch.Generator().manual_seed(0))
    sigma = torch.tensor([25 / 255, 10 / 255])[: shape[0]].repeat_interleave(shape[1])
    with torch.no_grad():
        fused = ffdnet(x, 25 / 255)
        plain = layer_by_layer(lambda: ffdnet(x, 25 / 255))
        per_frame = ffdnet(x, sigma)
        per_frame_plain = layer_by_layer(lambda: ffdnet(x, sigma))
    torch.testing.assert_close(fused, plain, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(per_frame, per_frame_plain, rtol=1e-5, atol=1e-6)


def test_the_fused_operator_runs_only_without_autograd(ffdnet, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    calls: list[int] = []
    real = ffdnet_net.CONV_RELU

    def counting(*args):  # noqa: ANN002, ANN202
        calls.append(1)
        return real(*args)

    monkeypatch.setattr(ffdnet_net, "CONV_RELU", counting)
    x = torch.rand(1, 2, 16, 16)
    with torch.no_grad():
        ffdnet(x, 0.1)
    assert len(calls) == 14  # 14 convolution + ReLU pairs, the last convolution has none
    calls.clear()
    x.requires_grad_(True)
    ffdnet(x, 0.1).sum().backward()
    assert calls == [] and x.grad is not None and torch.isfinite(x.grad).all()
