"""Figures of a reconstruction: convergence, montage, per-frame scores, spectral previews.

Each ``*_figure`` function returns a `matplotlib.figure.Figure` (built without pyplot,
so no global state and no display); `write_figures` saves them as PNG files, atomically
(temporary file, then moved into place; with a `scicli.io.WriteGroup` together with the
other outputs of a command). matplotlib is imported the first time a figure is drawn, so
importing scicli or running ``scicli --help`` does not load it.

The figures:

* **convergence** -- relative residual ``||y - A x_k|| / ||y||`` (log scale) and, when the
  ground truth is known, PSNR (dB) against the iteration k, one line per measurement;
* **montage** -- ground truth / reconstruction / error map ``|x - x_true|`` for chosen frames,
  with colour bars (intensities on [0, 1]);
* **metrics** -- per-frame PSNR (dB) and SSIM bars with their means;
* **srgb** -- sRGB renderings of spectral cubes (CIE 1931 colour matching over the band
  centres, `scicli.color.cube_to_srgb`), reconstruction beside ground truth;
* **spectra** -- the spectra ``x_l(i, j)`` against wavelength (nm) at a few points, marked on the
  sRGB rendering.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

from scicli.color import cassi_wavelengths, cube_to_srgb
from scicli.io.atomic import WriteGroup, atomic_write
from scicli.metrics import frame_metrics

if TYPE_CHECKING:  # pragma: no cover - typing only
    from matplotlib.figure import Figure

__all__ = ["FIGURES", "comparison_figure", "convergence_figure", "default_frames", "metrics_figure", "montage_figure", "plot_names", "reconstruction_figures",
           "spectra_figure", "spectral_points", "srgb_figure", "write_figures"]

FIGURES: tuple[str, ...] = ("convergence", "montage", "metrics", "srgb", "spectra")
"""Names of the figures, in the order they are written (file ``<stem>-<name>.png``)."""

DPI = 110
_PANEL = 2.6  # inches per image panel


def _new_figure(width: float, height: float) -> Figure:
    """A figure on the Agg canvas (matplotlib loaded here, the first time a figure is drawn)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: PLC0415 (heavy dependency, loaded on use)
    from matplotlib.figure import Figure  # noqa: PLC0415 (heavy dependency, loaded on use)

    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def plot_names(stem: str, spectral: bool = False, convergence: bool = True) -> list[str]:
    """File names a ``--plot`` folder may receive for the input ``stem`` (checked before any
    computation): ``<stem>-convergence.png`` ... (``srgb`` and ``spectra`` for spectral cubes;
    no convergence figure for an evaluation, which has no iterations)."""
    names = [n for n in FIGURES if (spectral or n not in ("srgb", "spectra")) and (convergence or n != "convergence")]
    return [f"{stem}-{name}.png" for name in names]


def default_frames(count: int, n: int = 3) -> list[int]:
    """``n`` frames spread evenly over ``count`` (first, middle, last for n = 3)."""
    if count <= n:
        return list(range(count))
    return sorted({int(round(v)) for v in np.linspace(0, count - 1, n)})


def _magnitude(a: np.ndarray) -> np.ndarray:
    return np.abs(a) if np.iscomplexobj(a) else np.asarray(a, dtype=np.float64)


def _error_scale(errors: Sequence[np.ndarray]) -> float:
    """Top of the error colour scale: the 99.5th percentile of all errors shown (a few outliers
    would otherwise leave the map dark), at least 1e-6."""
    return max(float(np.percentile(np.concatenate([e.ravel() for e in errors]), 99.5)), 1e-6)


def _series(batches: Sequence[Mapping[str, Any]], key: str) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(label, iterations, values) of ``key`` per measurement (``key_each`` lists), or per batch
    (the batch mean) where the history has no per-measurement values."""
    lines: list[tuple[str, np.ndarray, np.ndarray]] = []
    for batch in batches:
        lo, hi = (int(v) for v in batch.get("measurements", (0, 1)))
        history = [rec for rec in batch.get("history", []) if key in rec]
        if not history:
            continue
        its = np.array([rec["iter"] for rec in history], dtype=float)
        each = [rec.get(f"{key}_each") for rec in history]
        if all(e is not None and len(e) == hi - lo for e in each):
            values = np.array(each, dtype=float)  # (iterations, measurements)
            lines += [(f"measurement {lo + j}", its, values[:, j]) for j in range(hi - lo)]
        else:
            label = f"measurement {lo}" if hi - lo == 1 else f"measurements {lo}-{hi - 1} (mean)"
            lines.append((label, its, np.array([rec[key] for rec in history], dtype=float)))
    return lines


def convergence_figure(batches: Sequence[Mapping[str, Any]], *, title: str = "") -> Figure:
    """Residual and PSNR against the iteration, one line per measurement.

    Parameters
    ----------
    batches : sequence of dict
        The solver's batch records (``Reconstruction.batches``): ``measurements`` ``[lo, hi)``
        and ``history``, a list of per-iteration records with ``iter`` and ``residual``
        (``||y - A x_k|| / ||y||``) or, for learned fixed-point maps, ``fixed_point_residual``
        (``||f(z) - z|| / ||f(z)||``), ``psnr`` when the ground truth is known, and optionally
        ``residual_each`` / ``psnr_each`` per measurement of the batch.
    title : str
        Figure title (e.g. the input and the method).

    Returns
    -------
    matplotlib.figure.Figure
        One axes for the residual (log scale), a second for PSNR (dB) when any record has one.
    """
    residual_key = "residual"
    lines = _series(batches, residual_key)
    if not lines:
        residual_key = "fixed_point_residual"
        lines = _series(batches, residual_key)
    psnr_lines = _series(batches, "psnr")
    panels = 1 + bool(psnr_lines)
    fig = _new_figure(4.6 * panels, 3.4)
    axes = fig.subplots(1, panels, squeeze=False)[0]
    many = len(lines) > 8
    ax = axes[0]
    for label, its, values in lines:
        ax.semilogy(its, np.maximum(values, 1e-16), marker="." if its.size < 30 else None, lw=1.2,
                    label=None if many else label)
    ax.set_xlabel("iteration k")
    if residual_key == "residual":
        ax.set_ylabel(r"relative residual $\|y - A x_k\| \,/\, \|y\|$")
        ax.set_title("data residual")
    else:
        ax.set_ylabel(r"fixed-point residual $\|f(z_k) - z_k\| \,/\, \|f(z_k)\|$")
        ax.set_title("fixed-point residual")
    ax.grid(True, which="both", alpha=0.3)
    if psnr_lines:
        ax = axes[1]
        for label, its, values in psnr_lines:
            ax.plot(its, values, marker="o" if its.size < 3 else ("." if its.size < 30 else None), lw=1.2,
                    label=None if many else label)
        ax.set_xlabel("iteration k")
        ax.set_ylabel("PSNR (dB)")
        ax.set_title("PSNR against the ground truth")
        ax.grid(True, alpha=0.3)
    if not many and len(lines) > 1:
        axes[-1].legend(fontsize="small")
    fig.suptitle(title or "convergence")
    return fig


def montage_figure(recon: np.ndarray, orig: np.ndarray | None = None, frames: Sequence[int] | None = None, *,
                   unit: str = "frame", numbers: Sequence[int] | None = None, details: Sequence[str] | None = None,
                   title: str = "") -> Figure:
    """Ground truth / reconstruction / error map for chosen frames, one row per frame.

    Parameters
    ----------
    recon : ndarray (F, H, W)
        The reconstructed frames on [0, 1] (complex images are shown as magnitudes).
    orig : ndarray (F, H, W), optional
        The ground truth on [0, 1]; without it only the reconstruction column is drawn.
    frames : sequence of int, optional
        Frame indices to show; default `default_frames` (first, middle, last).
    unit : str
        What a frame is called in the titles (frame, band, image).
    numbers : sequence of int, optional
        The number printed for each frame of ``recon`` (e.g. its index in the ground-truth file
        when only some frames were compared); default 0, 1, ...
    details : sequence of str, optional
        Text shown after each frame's number (e.g. a spectral band's centre wavelength, "498 nm").
    title : str
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure
        ``len(frames)`` rows of 1 (reconstruction) or 3 (ground truth, reconstruction,
        ``|x - x_true|``) image axes, a colour bar under each column, and the PSNR of each frame
        in its title when the ground truth is known.
    """
    recon = _magnitude(recon)
    ref = None if orig is None else _magnitude(orig)
    picked = list(default_frames(recon.shape[0]) if frames is None else frames)
    cols = 1 if ref is None else 3
    H, W = recon.shape[-2:]
    scale = _PANEL / max(H, W)
    fig = _new_figure(cols * (W * scale + 0.2), len(picked) * (H * scale + 0.3) + 1.0)
    axes = fig.subplots(len(picked), cols, squeeze=False)
    err_top = 0.0
    if ref is not None:
        err_top = _error_scale([np.abs(np.clip(recon[f], 0, 1) - np.clip(ref[f], 0, 1)) for f in picked])
    images = {}
    for row, f in zip(axes, picked):
        x = np.clip(recon[f], 0, 1)
        n = f if numbers is None else numbers[f]
        if details is not None:
            n = f"{n} ({details[f]})"
        panels: list[tuple[np.ndarray, str, str, float]] = []
        if ref is not None:
            r = np.clip(ref[f], 0, 1)
            mse = float(np.mean((x - r) ** 2))
            score = f"{10 * np.log10(1 / mse):.2f} dB" if mse > 0 else "exact"
            panels = [(r, f"ground truth, {unit} {n}", "gray", 1.0),
                      (x, f"reconstruction, {unit} {n} ({score})", "gray", 1.0),
                      (np.abs(x - r), f"error |x - x_true|, {unit} {n}", "magma", err_top)]
        else:
            panels = [(x, f"reconstruction, {unit} {n}", "gray", 1.0)]
        for col, (ax, (img, name, cmap, top)) in enumerate(zip(row, panels)):
            images[col] = ax.imshow(img, cmap=cmap, vmin=0.0, vmax=top, interpolation="nearest")
            ax.set_title(name, fontsize="small")
            ax.set_axis_off()
    labels = ["intensity [0, 1]"] if ref is None else ["intensity [0, 1]", "intensity [0, 1]", "|error| (top: 99.5th percentile)"]
    for col, label in enumerate(labels):  # one colour bar per column, under it
        bar = fig.colorbar(images[col], ax=list(axes[:, col]), location="bottom", shrink=0.8, aspect=30, pad=0.01,
                           extend="max" if col == 2 else "neither")
        bar.set_label(label, fontsize="small")
    fig.suptitle(title or "reconstruction")
    return fig


def metrics_figure(psnr: Sequence[float], ssim: Sequence[float], frame_ids: Sequence[int] | None = None, *,
                   unit: str = "frame", title: str = "") -> Figure:
    """Per-frame PSNR (dB) and SSIM as bars, with their means as dashed lines.

    Parameters
    ----------
    psnr, ssim : sequence of float
        One value per frame (infinite PSNR of an exact frame is drawn at the finite maximum).
    frame_ids : sequence of int, optional
        The frame numbers on the x axis (default 0, 1, ...).
    unit : str
        What a frame is called on the x axis.
    title : str
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure
        Two axes: PSNR (dB) and SSIM against the frame.
    """
    p = np.asarray(psnr, dtype=float)
    s = np.asarray(ssim, dtype=float)
    ids = np.arange(p.size) if frame_ids is None else np.asarray(frame_ids)
    finite = p[np.isfinite(p)]
    top = float(finite.max()) if finite.size else 100.0
    p = np.where(np.isfinite(p), p, top)
    fig = _new_figure(max(6.0, 0.28 * p.size + 2.5), 4.6)
    ax_p, ax_s = fig.subplots(2, 1, sharex=True)
    pos = np.arange(p.size)
    for ax, values, label, colour in ((ax_p, p, "PSNR (dB)", "tab:blue"), (ax_s, s, "SSIM", "tab:orange")):
        ax.bar(pos, values, color=colour, width=0.8)
        mean = float(np.mean(values)) if values.size else float("nan")
        ax.axhline(mean, color="k", ls="--", lw=1)
        ax.set_title(f"{label}, mean {mean:.2f} (dashed)" if "PSNR" in label else f"{label}, mean {mean:.4f} (dashed)",
                     fontsize="small")
        ax.set_ylabel(label)
        ax.grid(True, axis="y", alpha=0.3)
        low = float(values.min()) if values.size else 0.0
        high = float(values.max()) if values.size else 1.0
        margin = 0.15 * (high - low) + (0.5 if "PSNR" in label else 0.01)
        ax.set_ylim(max(0.0, low - margin), high + margin / 3)
    ax_s.set_xlabel(unit)
    step = max(1, int(np.ceil(p.size / 24)))
    ax_s.set_xticks(pos[::step], [str(i) for i in ids[::step]])
    fig.suptitle(title or "scores")
    return fig


def comparison_figure(recons: Mapping[str, np.ndarray], orig: np.ndarray, frames: Sequence[int] | None = None, *,
                      title: str = "") -> Figure:
    """Several reconstructions of the same frames side by side: ground truth, then each method
    with its PSNR, then each method's error map on a shared scale.

    Parameters
    ----------
    recons : mapping of str to ndarray (F, H, W)
        Method name -> reconstructed frames on [0, 1].
    orig : ndarray (F, H, W)
        The ground truth on [0, 1].
    frames : sequence of int, optional
        Frames to show, one row each; default the middle frame.
    title : str
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure
        ``len(frames)`` rows of ``1 + 2 len(recons)`` image axes (ground truth, reconstructions,
        error maps ``|x - x_true|``) and two colour bars (intensity, error).
    """
    ref = _magnitude(orig)
    picked = [ref.shape[0] // 2] if frames is None else list(frames)
    names = list(recons)
    xs = {n: np.clip(_magnitude(v), 0, 1) for n, v in recons.items()}
    cols = 1 + 2 * len(names)
    H, W = ref.shape[-2:]
    scale = _PANEL / max(H, W)
    fig = _new_figure(cols * (W * scale + 0.1), len(picked) * (H * scale + 0.35) + 1.0)
    axes = fig.subplots(len(picked), cols, squeeze=False)
    err_top = _error_scale([np.abs(xs[n][f] - np.clip(ref[f], 0, 1)) for n in names for f in picked])
    for row, f in zip(axes, picked):
        r = np.clip(ref[f], 0, 1)
        gray = row[0].imshow(r, cmap="gray", vmin=0, vmax=1)
        row[0].set_title(f"ground truth, frame {f}", fontsize="small")
        for k, n in enumerate(names):
            mse = float(np.mean((xs[n][f] - r) ** 2))
            score = f"{10 * np.log10(1 / mse):.2f} dB" if mse > 0 else "exact"
            row[1 + k].imshow(xs[n][f], cmap="gray", vmin=0, vmax=1)
            row[1 + k].set_title(f"{n} ({score})", fontsize="small")
            err = row[1 + len(names) + k].imshow(np.abs(xs[n][f] - r), cmap="magma", vmin=0, vmax=err_top)
            row[1 + len(names) + k].set_title(f"{n}: |x - x_true|", fontsize="small")
        for ax in row:
            ax.set_axis_off()
    bar = fig.colorbar(gray, ax=list(axes[:, :1 + len(names)].ravel()), location="bottom", shrink=0.5, aspect=40,
                       pad=0.02)
    bar.set_label("intensity [0, 1]", fontsize="small")
    bar = fig.colorbar(err, ax=list(axes[:, 1 + len(names):].ravel()), location="bottom", shrink=0.8, aspect=25,
                       pad=0.02, extend="max")
    bar.set_label("|error| (top: 99.5th percentile)", fontsize="small")
    fig.suptitle(title or "comparison")
    return fig


def spectral_points(cube: np.ndarray, n: int = 4) -> list[tuple[int, int]]:
    """``n`` (row, col) points to draw spectra at: in each cell of a near-square grid, the
    brightest pixel of the band-mean image smoothed over 5 x 5 (away from the borders)."""
    from scipy import ndimage  # noqa: PLC0415 (0.3 s of imports that `scicli reconstruct` need not pay)

    mean = ndimage.uniform_filter(_magnitude(cube).mean(axis=0), size=5, mode="nearest")
    H, W = mean.shape
    rows = int(np.floor(np.sqrt(n)))
    cols = int(np.ceil(n / rows))
    points: list[tuple[int, int]] = []
    for k in range(n):
        i, j = divmod(k, cols)
        r0, r1 = i * H // rows, (i + 1) * H // rows
        c0, c1 = j * W // cols, (j + 1) * W // cols
        m = min(4, (r1 - r0) // 4, (c1 - c0) // 4)
        cell = mean[r0 + m:r1 - m, c0 + m:c1 - m]
        if cell.size == 0:
            points.append(((r0 + r1) // 2, (c0 + c1) // 2))
            continue
        a, b = np.unravel_index(int(np.argmax(cell)), cell.shape)
        points.append((r0 + m + int(a), c0 + m + int(b)))
    return points


def _brightness(cube: np.ndarray) -> float:
    """The 99.5th percentile of the band sum (the exposure reference of a rendering)."""
    return float(np.percentile(cube.sum(axis=0), 99.5)) or 1.0


def srgb_figure(cube: np.ndarray, orig: np.ndarray | None = None, wavelengths: np.ndarray | None = None, *,
                title: str = "") -> Figure:
    """sRGB renderings of a spectral cube (L, H, W), beside the ground truth's when given.

    The rendering is `scicli.color.cube_to_srgb` (CIE 1931 colour matching over the band
    centres, `scicli.color.cassi_wavelengths` by default). Both images share the exposure
    of the ground truth when it is known, so a brightness error shows.

    Returns
    -------
    matplotlib.figure.Figure
        One or two image axes.
    """
    cube = _magnitude(cube)
    lam = cassi_wavelengths(cube.shape[0]) if wavelengths is None else np.asarray(wavelengths, dtype=float)
    panels = [("reconstruction", cube)] if orig is None else [("ground truth", _magnitude(orig)), ("reconstruction", cube)]
    exposure = _brightness(panels[0][1])  # cube_to_srgb normalises each image by its own brightness
    H, W = cube.shape[-2:]
    scale = 3.2 / max(H, W)
    fig = _new_figure(len(panels) * (W * scale + 0.3), H * scale + 0.9)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (name, c) in zip(axes, panels):
        ax.imshow(cube_to_srgb(c, lam, gain=_brightness(c) / exposure))
        ax.set_title(f"{name} (sRGB, {lam[0]:.0f}-{lam[-1]:.0f} nm)", fontsize="small")
        ax.set_axis_off()
    fig.suptitle(title or "spectral cube, sRGB rendering")
    return fig


def spectra_figure(cube: np.ndarray, orig: np.ndarray | None = None, wavelengths: np.ndarray | None = None, *,
                   points: Sequence[tuple[int, int]] | None = None, title: str = "") -> Figure:
    """Spectra ``x_l(i, j)`` against wavelength at a few points, marked on the sRGB rendering.

    Parameters
    ----------
    cube : ndarray (L, H, W)
        The reconstructed cube on [0, 1].
    orig : ndarray (L, H, W), optional
        The ground truth (drawn dashed in the same colour).
    wavelengths : ndarray (L,), optional
        Band centres in nm; default `scicli.color.cassi_wavelengths`.
    points : sequence of (row, col), optional
        Where to draw spectra; default `spectral_points` of the ground truth (or of the
        reconstruction).
    title : str
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure
        Two axes: the sRGB rendering with numbered points, and intensity against wavelength (nm).
    """
    cube = _magnitude(cube)
    ref = None if orig is None else _magnitude(orig)
    lam = cassi_wavelengths(cube.shape[0]) if wavelengths is None else np.asarray(wavelengths, dtype=float)
    pts = list(spectral_points(ref if ref is not None else cube) if points is None else points)
    H, W = cube.shape[-2:]
    side = 3.2
    fig = _new_figure(side * W / max(H, W) + 4.8, side + 0.8)
    ax_img, ax_s = fig.subplots(1, 2, width_ratios=[side * W / max(H, W), 4.2])
    ax_img.imshow(cube_to_srgb(ref if ref is not None else cube, lam))
    ax_img.set_title("points (ground truth, sRGB)" if ref is not None else "points (sRGB)", fontsize="small")
    ax_img.set_axis_off()
    colours = [f"C{k % 10}" for k in range(len(pts))]
    for k, ((r, c), colour) in enumerate(zip(pts, colours), start=1):
        ax_img.plot([c], [r], marker="o", ms=7, mfc="none", mec=colour, mew=2)
        ax_img.annotate(str(k), (c, r), xytext=(5, 5), textcoords="offset points", color=colour,
                        fontsize="small", fontweight="bold")
        ax_s.plot(lam, cube[:, r, c], color=colour, lw=1.6, marker=".", label=f"{k}: ({r}, {c})")
        if ref is not None:
            ax_s.plot(lam, ref[:, r, c], color=colour, lw=1.2, ls="--")
    ax_s.set_xlabel("wavelength (nm)")
    ax_s.set_ylabel("intensity [0, 1]")
    ax_s.set_title("spectra: reconstruction (solid)" + (", ground truth (dashed)" if ref is not None else ""),
                   fontsize="small")
    ax_s.grid(True, alpha=0.3)
    ax_s.legend(title="point (row, col)", fontsize="x-small", title_fontsize="x-small")
    fig.suptitle(title or "spectra")
    return fig


def reconstruction_figures(x: np.ndarray, batches: Sequence[Mapping[str, Any]], orig: np.ndarray | None = None, *,
                           operator: str = "video-sci", frames: Sequence[int] | None = None,
                           metrics: Mapping[str, Any] | None = None, title: str = "") -> dict[str, Figure]:
    """Every figure of one reconstruction, by name (see `FIGURES`).

    Parameters
    ----------
    x : ndarray (K, C, H, W)
        The estimates of K measurements (C frames, bands or channels), on [0, 1].
    batches : sequence of dict
        The solver's batch records with their histories (see `convergence_figure`).
    orig : ndarray (K, C, H, W), optional
        The ground truth; adds the ground-truth and error columns, the PSNR curves and the
        ``metrics`` figure.
    operator : str
        The forward model's name: ``cassi`` adds ``srgb`` and ``spectra`` (of the first
        measurement's cube).
    frames : sequence of int, optional
        Frames of the flattened ``(K C, H, W)`` output shown in the montage.
    metrics : dict, optional
        Per-frame ``psnr`` and ``ssim`` lists (``scicli.pipeline.score``); computed here when
        missing and the ground truth is known.
    title : str
        Prefix of the figure titles (e.g. input and method).

    Returns
    -------
    dict of str to matplotlib.figure.Figure
    """
    K, C = x.shape[:2]
    flat = x.reshape(K * C, *x.shape[2:])
    ref = None if orig is None else orig.reshape(K * C, *orig.shape[2:])
    unit = {"cassi": "band", "video-sci": "frame"}.get(operator, "image")
    figures: dict[str, Figure] = {"convergence": convergence_figure(batches, title=f"{title}: convergence")}
    details = [f"{w:.0f} nm" for w in cassi_wavelengths(C)] * K if operator == "cassi" else None
    figures["montage"] = montage_figure(flat, ref, frames, unit=unit, details=details, title=title)
    if ref is not None:
        if metrics is None or "psnr" not in metrics:
            metrics = frame_metrics(_magnitude(flat), _magnitude(ref))
        figures["metrics"] = metrics_figure(metrics["psnr"], metrics["ssim"], unit=unit,
                                            title=f"{title}: per-{unit} scores")
    if operator == "cassi":
        cube = x[0]
        gt = None if orig is None else orig[0]
        figures["srgb"] = srgb_figure(cube, gt, title=f"{title}: measurement 0")
        figures["spectra"] = spectra_figure(cube, gt, title=f"{title}: measurement 0, spectra")
    return figures


def learning_curve_figure(curves: Sequence[tuple[str, np.ndarray, np.ndarray, float | None]], *,
                          target: float | None = None, unit: str = "PSNR (dB)", title: str = "") -> Figure:
    """Validation score against training steps, one line per run ``(label, steps, scores,
    baseline)``; each run's untrained baseline as a dotted line of the same colour, the target as a
    dashed grey line. Logarithmic step axis (the projection of :mod:`scicli.train.curve` is linear
    in it)."""
    fig = _new_figure(6.4, 4.0)
    ax = fig.add_subplot()
    for i, (label, steps, scores, baseline) in enumerate(curves):
        color = f"C{i % 10}"
        ax.plot(steps, scores, "o-", color=color, label=label, markersize=3)
        if baseline is not None:
            ax.axhline(baseline, color=color, linestyle=":", linewidth=1, label=f"{label}: untrained start")
    if target is not None:
        ax.axhline(target, color="0.4", linestyle="--", linewidth=1, label=f"target {target:g}")
    ax.set_xscale("log")
    ax.set_xlabel("training steps")
    ax.set_ylabel(f"validation {unit}")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    if title:
        ax.set_title(title)
    return fig


def write_figures(folder: Path, stem: str, figures: Mapping[str, Figure], *, force: bool = False,
                  group: WriteGroup | None = None) -> list[Path]:
    """Save ``figures`` (name -> Figure) as ``folder/<stem>-<name>.png``, each atomically (or
    staged in ``group``, moved into place by its commit). Returns the paths."""
    return [save_figure(Path(folder) / f"{stem}-{name}.png", fig, force=force, group=group)
            for name, fig in figures.items()]


def save_figure(path: Path, fig: Figure, *, force: bool = False, group: WriteGroup | None = None) -> Path:
    """Save one figure as a PNG at :data:`DPI`, atomically (or staged in ``group``)."""
    return atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=DPI), force=force, group=group)
