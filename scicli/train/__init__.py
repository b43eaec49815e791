"""Training: datasets of image patches and video clips, model checkpoints, the training loop.

``scicli.data.datasets`` finds and crops training data; ``scicli.train.checkpoint`` saves and
rebuilds models as plain tensors (``torch.load(weights_only=True)``); ``scicli.train.loop``
trains a noise-level-conditional denoiser ``D(x + sigma n, sigma) ~ x``.
"""
