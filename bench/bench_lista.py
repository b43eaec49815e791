"""LISTA against ISTA and FISTA: the code-prediction experiment of Gregor and LeCun (ICML 2010), Table 1.

    python bench/bench_lista.py [--quick] [--atoms 100,400] [--layers 1,3,7] [--epochs E] ...
                                [--run-dir /work/runs/lista] [--plot docs/images/lista_table1.png]

Data: 10 x 10 patches of shared/data/Train400 (grayscale, on [0, 1]), at seeded random positions;
the first 360 images (sorted by name) give the dictionary-learning and LISTA-training patches, the
last 40 (test_361..test_400) the held-out test patches. Each patch is flattened row-major, its
mean removed, and all patches are divided by one number, the standard deviation of the
mean-removed training pixels (so a training patch has mean squared norm n = 100; the paper
removes the mean and normalises, without saying how).

Dictionary: scikit-learn's MiniBatchDictionaryLearning (m = 100 or 400 atoms, the same alpha,
coordinate-descent fits), atoms renormalised to unit norm. Target codes: the minimisers of

    E(z) = ||y - D z||^2 / 2 + alpha ||z||_1        (alpha = 0.5 by default)

by coordinate descent (scikit-learn's Lasso with alpha / n, which is the same objective, tol 1e-8);
the script checks them against 3000 FISTA iterations and prints the optimality (KKT) violation.

Methods, all from z = 0 and counted as in the paper:
  ISTA / FISTA k iterations: k soft-threshold steps ``h_{alpha/L}(z - D^T (D z - y) / L)`` (FISTA
  with Nesterov's extrapolation; scicli.algorithms.pgd_step and nesterov), k = 1..50;
  LISTA T iterations: ``z_0 = h(W_e y)``, then T steps ``h(W_e y + S z)`` (scicli's ``lista``,
  the paper's Algorithm 3; W_e, S, theta shared by the steps), initialised as ISTA and trained
  here (Adam on the mean squared code error against the coordinate-descent codes, mini-batches of
  the training patches; not through ``scicli train``, whose tasks draw images as the unknown).
Error: the squared error ``||z - z*||^2`` per patch, averaged over the test patches (the paper's
"prediction error"); the relative error ``sum ||z - z*||^2 / sum ||z*||^2`` is printed too.

The trained networks are written in the weights store's checkpoint format to
``RUN_DIR/m{m}_T{T}/best.pt`` (with run.json), the dictionary to ``RUN_DIR/m{m}/dictionary.npz``;
``scicli weights ship RUN_DIR/m100_T7 lista --with RUN_DIR/m100/dictionary.npz`` ships them.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):  # numpy's BLAS: the CPUs are shared
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import shlex  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from scicli.algorithms import nesterov, pgd_step  # noqa: E402
from scicli.methods.lista import LISTA  # noqa: E402
from scicli.physics import OPERATORS  # noqa: E402
from scicli.priors.sparsity import soft_threshold  # noqa: E402
from scicli.weights.store import FORMAT, FORMAT_VERSION, save_checkpoint  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TRAIN400 = ROOT.parent / "shared" / "data" / "Train400"
PATCH = 10
TEST_IMAGES = 40
PUBLISHED = {  # Gregor and LeCun 2010, Table 1 (prediction error) and the text: FISTA iterations to LISTA-1
    100: {"LISTA 1": 1.50, "LISTA 3": 0.98, "LISTA 7": 0.52, "FISTA 1": 21.0, "fista_to_lista1": 18},
    400: {"LISTA 1": 2.45, "LISTA 3": 2.12, "LISTA 7": 1.62, "FISTA 1": 22.0, "fista_to_lista1": 35},
}
Dictionary = OPERATORS.get("dictionary").factory


def say(text: str = "") -> None:
    print(text, flush=True)


# ---------------------------------------------------------------------------- data
def patches(files: list[Path], count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` random 10 x 10 patches (on [0, 1], flattened row-major, their mean removed),
    about the same number from every file."""
    per = -(-count // len(files))
    out = []
    for f in files:
        img = np.asarray(Image.open(f).convert("L"), dtype=np.float64) / 255.0
        r = rng.integers(0, img.shape[0] - PATCH + 1, per)
        c = rng.integers(0, img.shape[1] - PATCH + 1, per)
        out.append(np.stack([img[i:i + PATCH, j:j + PATCH].reshape(-1) for i, j in zip(r, c)]))
    X = np.concatenate(out)[rng.permutation(per * len(files))[:count]]
    return X - X.mean(axis=1, keepdims=True)


def learn_dictionary(X: np.ndarray, m: int, alpha: float, epochs: int, seed: int) -> np.ndarray:
    """D (n, m) from MiniBatchDictionaryLearning on the rows of X, atoms renormalised to 1."""
    from sklearn.decomposition import MiniBatchDictionaryLearning  # noqa: PLC0415 (a bench-only dependency)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the inner CD fits of each mini-batch stop at their max_iter
        dl = MiniBatchDictionaryLearning(n_components=m, alpha=alpha, batch_size=256, max_iter=epochs,
                                         fit_algorithm="cd", random_state=seed)
        dl.fit(X)
    D = dl.components_.T.copy()
    return D / np.linalg.norm(D, axis=0, keepdims=True).clip(1e-12)


def lasso_codes(X: np.ndarray, D: np.ndarray, alpha: float) -> np.ndarray:
    """argmin_z ||x - D z||^2 / 2 + alpha ||z||_1 for every row x of X by coordinate descent
    (scikit-learn's Lasso minimises ||x - D z||^2 / (2 n) + a ||z||_1: a = alpha / n)."""
    from sklearn.linear_model import Lasso  # noqa: PLC0415 (a bench-only dependency)

    n = D.shape[0]
    lasso = Lasso(alpha=alpha / n, fit_intercept=False, precompute=D.T @ D, tol=1e-8, max_iter=20000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lasso.fit(D, X.T)
    return np.asarray(lasso.coef_).reshape(X.shape[0], D.shape[1])


def kkt_violation(D: np.ndarray, X: np.ndarray, Z: np.ndarray, alpha: float) -> float:
    """max |optimality violation| / alpha: ``g = D^T (x - D z)`` must be ``alpha sign(z)`` on the
    support and ``|g| <= alpha`` off it."""
    g = (X - Z @ D.T) @ D
    on = Z != 0
    bad = np.where(on, np.abs(g - alpha * np.sign(Z)), np.clip(np.abs(g) - alpha, 0, None))
    return float(bad.max() / alpha)


# ---------------------------------------------------------------------------- methods
def code_error(z: torch.Tensor, target: torch.Tensor) -> tuple[float, float]:
    """(mean ||z - z*||^2 per patch, sum ||z - z*||^2 / sum ||z*||^2)."""
    d = ((z.flatten(1) - target) ** 2).sum(dim=1)
    return float(d.mean()), float(d.sum() / (target ** 2).sum())


def proximal_gradient(op, y: torch.Tensor, alpha: float, iters: int, accelerate: bool,
                      target: torch.Tensor | None = None) -> tuple[torch.Tensor, list[float]]:
    """ISTA (or FISTA) from z = 0 for ``iters`` iterations; the code error after each against ``target``."""
    L = op.norm()
    x = torch.zeros(y.shape[0], op.m, 1, 1, dtype=y.dtype)
    z = x
    errors = []
    for k in range(1, iters + 1):
        x_new = pgd_step(op, z, y, 1.0 / L, lambda v: soft_threshold(v, alpha / L))
        z = nesterov(x_new, x, k) if accelerate else x_new
        x = x_new
        if target is not None:
            errors.append(code_error(x, target)[0])
    return x, errors


def train_lista(op, T: int, alpha: float, Y: torch.Tensor, Z: torch.Tensor, Yt: torch.Tensor, Zt: torch.Tensor,
                epochs: int, batch: int, lr: float, seed: int) -> tuple[LISTA, list[dict[str, float]], int]:
    """LISTA with T steps, ISTA-initialised, trained by Adam on ``mean ||z_T - z*||^2`` (cosine
    learning-rate decay); the test error after each epoch. Returns the model, the curve, the steps."""
    torch.manual_seed(seed)
    model = LISTA.from_dictionary(op, iters=T, alpha=alpha)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    steps_per_epoch = -(-Y.shape[0] // batch)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, epochs * steps_per_epoch))
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        curve = [{"epoch": 0, "test_error": code_error(model(Yt, op)[0], Zt)[0]}]
    step = 0
    for epoch in range(1, epochs + 1):
        order = torch.randperm(Y.shape[0], generator=g)
        for i in range(0, Y.shape[0], batch):
            idx = order[i:i + batch]
            z, _ = model(Y[idx], op)
            loss = ((z.flatten(1) - Z[idx]) ** 2).sum(dim=1).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            step += 1
        with torch.no_grad():
            curve.append({"epoch": epoch, "test_error": code_error(model(Yt, op)[0], Zt)[0]})
    return model.eval(), curve, step


def iterations_to_reach(errors: list[float], level: float) -> int | None:
    """The first k (1-based) with ``errors[k-1] <= level``, else None."""
    return next((k for k, e in enumerate(errors, start=1) if e <= level), None)


# ---------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a small run: m = 100, few patches and epochs")
    ap.add_argument("--atoms", default="100,400", help="dictionary sizes m (default 100,400)")
    ap.add_argument("--layers", default="1,3,7", help="LISTA steps T (default 1,3,7)")
    ap.add_argument("--alpha", type=float, default=0.5, help="l1 weight alpha of the sparse-coding energy")
    ap.add_argument("--dict-patches", type=int, default=50000, help="patches for dictionary learning")
    ap.add_argument("--dict-epochs", type=int, default=2, help="passes of MiniBatchDictionaryLearning")
    ap.add_argument("--train-patches", type=int, default=40000, help="LISTA training patches")
    ap.add_argument("--test-patches", type=int, default=5000, help="held-out test patches")
    ap.add_argument("--epochs", type=int, default=25, help="LISTA training epochs")
    ap.add_argument("--batch", type=int, default=100, help="LISTA mini-batch")
    ap.add_argument("--lr", type=float, default=3e-3, help="Adam learning rate (cosine decay)")
    ap.add_argument("--fista-iters", type=int, default=50, help="ISTA/FISTA iterations (1..K)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1, help="torch threads")
    ap.add_argument("--run-dir", type=Path, default=None, help="write dictionaries, checkpoints and results here")
    ap.add_argument("--plot", type=Path, default=None, help="error-vs-iterations plot (PNG)")
    args = ap.parse_args(argv)
    if args.quick:
        args.atoms = "100" if args.atoms == "100,400" else args.atoms
        args.dict_patches, args.dict_epochs = min(args.dict_patches, 5000), 1
        args.train_patches, args.test_patches = min(args.train_patches, 3000), min(args.test_patches, 1000)
        args.epochs = min(args.epochs, 3)
    torch.set_num_threads(args.threads)
    atoms = [int(a) for a in args.atoms.split(",")]
    layers = [int(t) for t in args.layers.split(",")]
    command = "python bench/bench_lista.py " + shlex.join(sys.argv[1:] if argv is None else argv)
    t_all = time.perf_counter()
    say(f"{command}")
    say(f"device cpu ({platform.processor() or platform.machine()}), torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, load average {os.getloadavg()[0]:.2f}")

    files = sorted(TRAIN400.glob("*.png"))
    if len(files) <= TEST_IMAGES:
        say(f"error: Train400 not found or too small at {TRAIN400}")
        return 2
    rng = np.random.default_rng(args.seed)
    train_files, test_files = files[:-TEST_IMAGES], files[-TEST_IMAGES:]
    t = time.perf_counter()
    Xd = patches(train_files, args.dict_patches, rng)
    Xtr = patches(train_files, args.train_patches, rng)
    Xte = patches(test_files, args.test_patches, rng)
    scale = float(Xtr.std())
    Xd, Xtr, Xte = Xd / scale, Xtr / scale, Xte / scale
    say(f"patches: {len(Xd)} (dictionary) + {len(Xtr)} (LISTA training) from {len(train_files)} images, "
        f"{len(Xte)} (test) from the last {len(test_files)}; mean removed, divided by {scale:.5f} "
        f"(training-pixel std); {time.perf_counter() - t:.1f} s")

    results: dict[str, dict] = {}
    for m in atoms:
        say(f"\n=== m = {m} atoms, alpha = {args.alpha}")
        t = time.perf_counter()
        D = learn_dictionary(Xd, m, args.alpha, args.dict_epochs, args.seed)
        say(f"dictionary ({PATCH * PATCH}, {m}) by MiniBatchDictionaryLearning: {time.perf_counter() - t:.1f} s")
        t = time.perf_counter()
        Ztr, Zte = lasso_codes(Xtr, D, args.alpha), lasso_codes(Xte, D, args.alpha)
        say(f"target codes by coordinate descent: {time.perf_counter() - t:.1f} s; non-zeros {100 * (Zte != 0).mean():.1f} %, "
            f"mean ||z*||^2 {float((Zte ** 2).sum(1).mean()):.3f} (test); KKT violation / alpha: "
            f"train {kkt_violation(D, Xtr, Ztr, args.alpha):.1e}, test {kkt_violation(D, Xte, Zte, args.alpha):.1e}")

        op64 = Dictionary(torch.from_numpy(D))
        Yte64, Zte64 = torch.from_numpy(Xte), torch.from_numpy(Zte)
        zf, _ = proximal_gradient(op64, Yte64[:1000], args.alpha, 3000, True)
        say(f"check: 3000 FISTA iterations from 0 against the CD codes (1000 test patches): mean ||z - z*||^2 "
            f"{code_error(zf, Zte64[:1000])[0]:.2e}; L = ||D||^2 = {op64.norm():.3f}")
        t = time.perf_counter()
        _, ista_err = proximal_gradient(op64, Yte64, args.alpha, args.fista_iters, False, Zte64)
        _, fista_err = proximal_gradient(op64, Yte64, args.alpha, args.fista_iters, True, Zte64)
        say(f"ISTA / FISTA 1..{args.fista_iters}: {time.perf_counter() - t:.1f} s")

        op = op64.to(torch.float32)
        Y, Z = torch.from_numpy(Xtr).float(), torch.from_numpy(Ztr).float()
        Yt, Zt = Yte64.float(), Zte64.float()
        res = {"ista": ista_err, "fista": fista_err, "lista": {}, "zero": float((Zte ** 2).sum(1).mean())}
        for T in layers:
            t = time.perf_counter()
            model, curve, steps = train_lista(op, T, args.alpha, Y, Z, Yt, Zt, args.epochs, args.batch, args.lr,
                                              args.seed)
            seconds = time.perf_counter() - t
            with torch.no_grad():
                err, rel = code_error(model(Yt, op)[0], Zt)
            k_f, k_i = iterations_to_reach(fista_err, err), iterations_to_reach(ista_err, err)
            res["lista"][T] = {"error": err, "relative": rel, "untrained": curve[0]["test_error"], "curve": curve,
                               "fista_iters": k_f, "ista_iters": k_i, "seconds": seconds, "steps": steps}
            say(f"LISTA T={T}: test error {err:.4f} (untrained = {T + 1} ISTA steps: {curve[0]['test_error']:.4f}); "
                f"FISTA needs {k_f or f'> {args.fista_iters}'}, ISTA {k_i or f'> {args.fista_iters}'} iterations "
                f"to reach it; {steps} Adam steps, {seconds:.1f} s")
            if args.run_dir is not None:
                save_run(args.run_dir / f"m{m}_T{T}", model, res["lista"][T], command, seconds, steps, args)
        if args.run_dir is not None:
            (args.run_dir / f"m{m}").mkdir(parents=True, exist_ok=True)
            np.savez(args.run_dir / f"m{m}" / "dictionary.npz", dictionary=D.astype(np.float32))
        results[str(m)] = res
        if args.run_dir is not None:
            (args.run_dir / "results.json").write_text(json.dumps({"command": command, "results": results}, indent=1))

    table(results, atoms, layers, args.fista_iters)
    if args.plot is not None:
        plot(results, atoms, layers, args.plot, args.alpha)
        say(f"plot: {args.plot}")
    if args.run_dir is not None:
        args.run_dir.mkdir(parents=True, exist_ok=True)
        (args.run_dir / "results.json").write_text(json.dumps({"command": command, "results": results}, indent=1))
    say(f"\ntotal {time.perf_counter() - t_all:.0f} s, load average {os.getloadavg()[0]:.2f} "
        f"(1 min), {os.getloadavg()[1]:.2f} (5 min)")
    return 0


def save_run(run: Path, model: LISTA, res: dict, command: str, seconds: float, steps: int,
             args: argparse.Namespace) -> None:
    """The trained network as a scicli checkpoint (``best.pt``) with run.json, for ``scicli weights ship``."""
    run.mkdir(parents=True, exist_ok=True)
    save_checkpoint(run / "best.pt", {
        "format": FORMAT, "format_version": FORMAT_VERSION, "method": "lista", "config": model.config,
        "model": model.state_dict(), "epoch": args.epochs, "step": steps,
        "val": {"test_code_error": res["error"], "test_relative_error": res["relative"],
                "untrained_code_error": res["untrained"], "fista_iterations_to_match": res["fista_iters"],
                "ista_iterations_to_match": res["ista_iters"]},
        "command": command, "training_data": [str(TRAIN400)],
        "torch_version": str(torch.__version__),
    })
    (run / "run.json").write_text(json.dumps({"device": f"cpu ({torch.get_num_threads()} threads)",
                                              "seconds": round(seconds, 2),
                                              "seconds_per_step": round(seconds / max(steps, 1), 4)}))


def table(results: dict, atoms: list[int], layers: list[int], iters: int) -> None:
    """The Table 1 rows measured (and published where the paper has them)."""
    cols = "".join(f" | m={m} measured | published" for m in atoms)
    say(f"\nprediction error, mean ||z - z*||^2 over the test patches\nmethod{cols}")
    rows = [("zero code", lambda r: r["zero"], None)]
    rows += [(f"LISTA {T} iteration{'s' if T > 1 else ''}", (lambda T: lambda r: r["lista"][T]["error"])(T), f"LISTA {T}")
             for T in layers]
    rows += [(f"LISTA {T}, untrained (ISTA init)", (lambda T: lambda r: r["lista"][T]["untrained"])(T), None)
             for T in layers]
    rows += [(f"FISTA {k} iteration{'s' if k > 1 else ''}", (lambda k: lambda r: r["fista"][k - 1])(k),
              "FISTA 1" if k == 1 else None) for k in (1, 2, 5, 10, 20, 35, 50) if k <= iters]
    rows += [(f"ISTA {k} iteration{'s' if k > 1 else ''}", (lambda k: lambda r: r["ista"][k - 1])(k), None)
             for k in (1, 10, 50) if k <= iters]
    for label, get, key in rows:
        line = label
        for m in atoms:
            pub = PUBLISHED.get(m, {}).get(key) if key else None
            line += f" | {get(results[str(m)]):.4f} | {pub if pub is not None else ''}"
        say(line)
    say("\nFISTA (ISTA) iterations to reach LISTA's error:")
    for T in layers:
        line = f"LISTA {T}"
        for m in atoms:
            r = results[str(m)]["lista"][T]
            pub = PUBLISHED.get(m, {}).get("fista_to_lista1") if T == 1 else None
            f_k = r["fista_iters"] or f"> {iters}"
            i_k = r["ista_iters"] or f"> {iters}"
            line += f" | m={m}: FISTA {f_k} (ISTA {i_k})" + (f", published FISTA {pub}" if pub else "")
        say(line)


def plot(results: dict, atoms: list[int], layers: list[int], path: Path, alpha: float) -> None:
    import matplotlib  # noqa: PLC0415 (a bench-only dependency)

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    fig, axes = plt.subplots(1, len(atoms), figsize=(5.2 * len(atoms), 4), squeeze=False)
    for ax, m in zip(axes[0], atoms):
        r = results[str(m)]
        k = np.arange(1, len(r["fista"]) + 1)
        ax.semilogy(k, r["fista"], "-", color="C0", label="FISTA")
        ax.semilogy(k, r["ista"], "--", color="C7", label="ISTA")
        for i, T in enumerate(layers):
            e = r["lista"][T]["error"]
            ax.axhline(e, color=f"C{i + 1}", lw=0.8, ls=":")
            ax.semilogy([T], [e], "o", color=f"C{i + 1}", label=f"LISTA {T} ({e:.3f})")
            kf = r["lista"][T]["fista_iters"]
            if kf:
                ax.semilogy([kf], [r["fista"][kf - 1]], "x", color=f"C{i + 1}")
        ax.set_title(f"m = {m} atoms, 10 x 10 Train400 patches, alpha {alpha}")
        ax.set_xlabel("iterations (LISTA: T steps after the first layer)")
        ax.set_ylabel("mean ||z - z*||^2 (test patches)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    raise SystemExit(main())
