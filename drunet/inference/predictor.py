"""``Predictor``: a trained run → class-index masks, with the run's own preprocessing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from drunet.config import ExperimentConfig
from drunet.datasets import normalize, read_image
from drunet.engine.checkpoint import load_model
from drunet.engine.run_dir import resolve_weights
from drunet.errors import DrunetError


class Predictor:
    """Predicts masks with a trained model.

    Normalisation, channel count and number of classes come from the configuration stored in
    the weights, so ``Predictor.from_run("runs/my-run").predict("image.png")`` is all it takes.
    """

    def __init__(
        self, model: nn.Module, config: ExperimentConfig, device: str | torch.device = "cpu"
    ) -> None:
        norm = config.data.normalization
        if norm.mode == "dataset" and (norm.mean is None or norm.std is None):
            raise DrunetError(
                "the weights' configuration holds no normalisation (data.normalization.mean/std)"
            )
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.config = config
        self.in_channels = int(config.model.in_channels or 0)
        self.num_classes = int(config.model.num_classes or 2)
        self.normalization = norm
        self.weights_path: Path | None = None

    @classmethod
    def from_run(
        cls,
        run_or_weights: str | Path | None = None,
        runs_dir: str | Path = "runs",
        device: str | torch.device = "cpu",
    ) -> Predictor:
        """Load a run folder (its best weights), a ``.safetensors`` file, or the latest run."""
        weights = resolve_weights(run_or_weights, runs_dir)
        model, config = load_model(weights)
        predictor = cls(model, config, device)
        predictor.weights_path = weights
        return predictor

    def preprocess(self, image: np.ndarray, source: str = "image") -> torch.Tensor:
        """``(H, W)`` or ``(H, W, C)`` array → normalised ``(1, C, H, W)`` float tensor."""
        if image.ndim == 2:
            image = image[:, :, None]
        if image.ndim != 3 or image.shape[2] != self.in_channels:
            channels = image.shape[2] if image.ndim == 3 else image.ndim
            raise DrunetError(
                f"{source} has {channels} channel(s) but the model was trained on "
                f"{self.in_channels}; convert the image or use a model trained on such images"
            )
        x = normalize(image, self.normalization, source=source)  # (H, W, C) float32
        return torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))[None]

    @torch.no_grad()
    def predict_probabilities(self, image: np.ndarray | str | Path) -> np.ndarray:
        """Class probabilities ``(K, H, W)`` float32 (K = number of classes, binary → 2)."""
        source = str(image) if isinstance(image, str | Path) else "image"
        array = read_image(image) if isinstance(image, str | Path) else image
        x = self.preprocess(array, source).to(self.device)
        logits = self.model(x)[0].float()  # (C, H, W)
        if logits.shape[0] == 1:
            foreground = torch.sigmoid(logits)
            probs = torch.cat([1 - foreground, foreground])
        else:
            probs = torch.softmax(logits, dim=0)
        return probs.cpu().numpy()

    def predict(self, image: np.ndarray | str | Path) -> np.ndarray:
        """Class-index mask ``(H, W)`` uint8 (uint16 beyond 255 classes)."""
        probs = self.predict_probabilities(image)
        dtype = np.uint8 if self.num_classes <= 256 else np.uint16
        # Binary: foreground where p > 0.5, the same rule as logits > 0 in training metrics.
        return probs.argmax(axis=0).astype(dtype)
