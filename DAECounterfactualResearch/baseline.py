"""The supervised baseline beside the DAE: MONAI's DenseNet121 trained from scratch on the same split and
preprocessing, as in the paper's tables. It predicts the grade directly (cross-entropy over grades, classes
weighted by inverse frequency); its detection score is P(grade >= positive_min_grade), never a hard label.
The epoch is chosen by validation AUC, like the DAE probe's regularisation.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from DAECounterfactualLib.errors import InputError

from .task_fitting import grading_metrics

MIN_SIZE = 32  # DenseNet121 halves the image five times


@dataclass(frozen=True)
class BaselineConfig:
    epochs: int = 20
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 1e-4
    seed: int = 0


@dataclass
class BaselineResult:
    model: torch.nn.Module
    best_epoch: int
    history: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0


def make_densenet(in_channels: int, n_grades: int) -> torch.nn.Module:
    from monai.networks.nets import DenseNet121

    return DenseNet121(spatial_dims=2, in_channels=in_channels, out_channels=n_grades)


def fit_size(images: torch.Tensor) -> torch.Tensor:
    """Upsample images smaller than DenseNet121's minimum (RetinaMNIST's 28 px -> 32 px), bilinear."""
    size = images.shape[-1]
    return images if size >= MIN_SIZE else F.interpolate(images, size=MIN_SIZE, mode="bilinear", align_corners=False)


@torch.inference_mode()
def predict_probabilities(model: torch.nn.Module, images: np.ndarray, batch_size: int = 128) -> np.ndarray:
    model.eval()
    parts = [torch.softmax(model(fit_size(torch.from_numpy(np.asarray(images[i:i + batch_size], np.float32)))), 1)
             for i in range(0, len(images), batch_size)]
    return torch.cat(parts).double().numpy()


def scores_and_grades(probabilities: np.ndarray, positive_min_grade: int) -> tuple[np.ndarray, np.ndarray]:
    """Detection score P(grade >= positive_min_grade) and the most probable grade."""
    return probabilities[:, positive_min_grade:].sum(1), probabilities.argmax(1)


def evaluate_baseline(model, images: np.ndarray, grades: np.ndarray, positive_min_grade: int) -> dict[str, Any]:
    score, predicted = scores_and_grades(predict_probabilities(model, images), positive_min_grade)
    return grading_metrics(score, predicted, grades, positive_min_grade)


def train_baseline(train_images: np.ndarray, train_grades: np.ndarray, val_images: np.ndarray,
                   val_grades: np.ndarray, n_grades: int, positive_min_grade: int,
                   config: BaselineConfig = BaselineConfig(), progress: bool = True) -> BaselineResult:
    """Train from scratch; keep the weights of the epoch with the best validation AUC."""
    import time

    from tqdm import tqdm

    known = train_grades >= 0
    x = torch.from_numpy(np.asarray(train_images[known], np.float32))
    y = torch.from_numpy(np.asarray(train_grades[known], np.int64))
    if len(np.unique(y.numpy())) < 2:
        raise InputError("the baseline needs at least two grades in the training split")
    counts = torch.bincount(y, minlength=n_grades).double()
    weights = (counts.sum() / (n_grades * counts.clamp(min=1))).float()
    torch.manual_seed(config.seed)
    model = make_densenet(x.shape[1], n_grades)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    steps = config.epochs * max(len(x) // config.batch_size, 1)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, config.lr, total_steps=steps)
    generator = torch.Generator().manual_seed(config.seed)
    best, history, start = None, [], time.time()
    for epoch in tqdm(range(config.epochs), desc="DenseNet121", disable=not progress):
        model.train()
        order = torch.randperm(len(x), generator=generator)
        for i in range(0, len(order) - config.batch_size + 1, config.batch_size):
            batch = order[i:i + config.batch_size]
            loss = F.cross_entropy(model(fit_size(x[batch])), y[batch], weight=weights)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
        val = evaluate_baseline(model, val_images, val_grades, positive_min_grade)
        history.append({"epoch": epoch + 1, "loss": loss.item(), **{k: val[k] for k in ("auc", "mae", "macro_f1")}})
        if best is None or val["auc"] > best[0]:
            best = (val["auc"], epoch + 1, copy.deepcopy(model.state_dict()))
    model.load_state_dict(best[2])
    return BaselineResult(model=model.eval(), best_epoch=best[1], history=history, seconds=time.time() - start)
