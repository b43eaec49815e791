"""Shipped weights (``*.pt`` + ``manifest.json``), the checkpoint store and the model builders."""

from scicli.weights import models  # noqa: F401  (registers the networks' builders)
from scicli.weights.store import (
    MODELS,
    WEIGHTS_DIR,
    build_model,
    is_reconstruction,
    load_checkpoint,
    load_model,
    model_from_checkpoint,
    save_checkpoint,
    sha256,
)

__all__ = ["MODELS", "WEIGHTS_DIR", "build_model", "is_reconstruction", "load_checkpoint", "load_model",
           "model_from_checkpoint", "save_checkpoint", "sha256"]
