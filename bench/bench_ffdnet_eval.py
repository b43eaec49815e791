"""One FFDNet evaluation as pnp-gap / deq-gap make it, against torch's raw convolution speed.

The call: ``FFDNetDenoiser()(x, sigma)`` on the iterate ``x`` of shape (1, B, H, W) (B = 8 frames
of 256 x 256 by default), under ``torch.no_grad()`` like the solvers' loops. FFDNet's work is 15
3x3 convolutions at half resolution on (B, C, H/2, W/2): 5 -> 64, 13 x 64 -> 64, 64 -> 4,

    FLOP = sum_l 2 * 9 * C_in,l * C_out,l * B * (H/2) * (W/2)   (about 127 GFLOP for 8 x 256 x 256).

Printed: milliseconds per evaluation and the GFLOP/s it achieves, next to the same 15 convolutions
alone (``F.conv2d`` on ready channels-last inputs, nothing else: the ceiling the denoiser can
reach with torch's kernels), and a per-operator profile of one evaluation (``torch.profiler``)
that shows where the rest of the time goes.

    python bench/bench_ffdnet_eval.py                    # this machine's default threads
    python bench/bench_ffdnet_eval.py --threads 1 --repeat 5
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import scicli.nets.ffdnet as ffdnet_net  # noqa: E402
from scicli.priors import DENOISERS  # noqa: E402


def conv_layers(net: nn.Module) -> list[nn.Conv2d]:
    return [m for m in net.modules() if isinstance(m, nn.Conv2d)]


def flops(convs: list[nn.Conv2d], frames: int, h: int, w: int) -> float:
    """Multiply-adds x 2 of the convolutions on (frames, C, h, w) inputs (h, w: half resolution)."""
    return sum(2.0 * 9 * c.in_channels * c.out_channels * frames * h * w for c in convs)


def timed(fn, repeat: int, warmup: int = 1) -> float:  # noqa: ANN001
    """Median seconds of ``fn()`` over ``repeat`` runs after ``warmup``."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-profile", action="store_true", help="skip the per-operator profile")
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    den = DENOISERS.get("ffdnet").factory()
    net = den.net
    convs = conv_layers(net)
    b, s = args.frames, args.size
    x = torch.rand(1, b, s, s)
    sigma = 25 / 255
    total = flops(convs, b, s // 2, s // 2)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', '(unset)')}, load {os.getloadavg()[0]:.2f} "
          f"{os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}; {b} frames of {s} x {s}: {total / 1e9:.1f} GFLOP per eval")

    # the convolutions alone, on ready channels-last inputs of each layer's shape
    inputs = [torch.rand(b, c.in_channels, s // 2, s // 2).contiguous(memory_format=torch.channels_last) for c in convs]

    def conv_only() -> None:
        with torch.inference_mode():
            for c, inp in zip(convs, inputs):
                F.conv2d(inp, c.weight, c.bias, padding=1)

    def evaluation() -> None:
        with torch.no_grad():
            den(x, sigma)

    def layer_by_layer() -> None:  # before: convolution, then ReLU as a second pass
        fused, ffdnet_net.CONV_RELU = ffdnet_net.CONV_RELU, None
        try:
            evaluation()
        finally:
            ffdnet_net.CONV_RELU = fused

    rows = {"convolutions alone": [], "FFDNet, layer by layer (before)": [], "FFDNet, conv+ReLU fused (now)": []}
    for fn in (conv_only, layer_by_layer, evaluation):  # warm-up: oneDNN builds its kernels on first use
        fn()
    for _ in range(args.repeat):  # interleaved: the three see the same background load
        for name, fn in zip(rows, (conv_only, layer_by_layer, evaluation)):
            rows[name].append(timed(fn, 1, warmup=0))
    t_conv = statistics.median(rows["convolutions alone"])
    print(f"fused conv+ReLU operator available: {ffdnet_net.CONV_RELU is not None}; medians of {args.repeat}")
    print(f"{'':<34} {'ms / eval':>10} {'GFLOP/s':>8} {'vs conv':>8}")
    for name, times in rows.items():
        t = statistics.median(times)
        print(f"{name:<34} {1e3 * t:>10.1f} {total / t / 1e9:>8.1f} {t / t_conv:>8.2f}")
    print(f"load after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    if args.no_profile:
        return
    from torch.profiler import ProfilerActivity, profile  # noqa: PLC0415 (only for the profile table)

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        evaluation()
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=14, max_name_column_width=36))


if __name__ == "__main__":
    main()
