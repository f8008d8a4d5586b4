"""A run's saved model and everything needed to use it again without retraining."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from nnexp.data.bundle import DataBundle
from nnexp.data.splits import FitData
from nnexp.errors import DataError
from nnexp.metrics import RunRecord, read_record
from nnexp.models.task import Task
from nnexp.results import CONFIG_FILE, HISTORY_FILE, METRICS_FILE, MODEL_FILE, atomic_path


def scaler_state(data: FitData) -> dict:
    """The feature and target scaling a fit used, as plain arrays."""
    scaler = data.feature_scaler
    if scaler is None:
        features = {"kind": "none"}
    elif isinstance(scaler, tuple):
        features = {"kind": "pixels", "mean": scaler[0], "std": scaler[1]}
    else:
        features = {"kind": "standard", "mean": scaler.mean_, "scale": scaler.scale_}
    return {"features": features, "target_mean": data.target_mean, "target_scale": data.target_scale}


def save_model(run_dir: Path, network: torch.nn.Module, cfg: DictConfig, bundle: DataBundle, data: FitData) -> None:
    """Write model.pt: weights, the model config, the input shape and the scaling."""
    payload = {
        "state_dict": {key: value.detach().cpu() for key, value in network.state_dict().items()},
        "model": OmegaConf.to_container(cfg.model, resolve=True),
        "input_shape": bundle.input_shape,
        "n_outputs": bundle.n_outputs,
        "task": bundle.task,
        "classes": bundle.classes,
        "scaling": scaler_state(data),
    }
    with atomic_path(Path(run_dir) / MODEL_FILE) as temporary:
        torch.save(payload, temporary)


@dataclass
class Run:
    """A finished run dir: its config, metrics, history, data and (rebuilt) network."""

    path: Path

    @cached_property
    def config(self) -> DictConfig:
        return OmegaConf.load(self.path / CONFIG_FILE)

    @cached_property
    def metrics(self) -> RunRecord:
        return read_record(self.path / METRICS_FILE)

    @property
    def test_score(self) -> float:
        """The test score, NaN when the run has none (yet)."""
        fit = self.metrics.fit
        return float("nan") if fit is None or fit.test_score is None else fit.test_score

    @property
    def task(self) -> Task:
        return Task(self.saved["task"], self.saved["n_outputs"])

    @cached_property
    def history(self) -> list[dict]:
        import csv

        with open(self.path / HISTORY_FILE) as handle:
            return [{k: float(v) if v not in ("", None) else float("nan") for k, v in row.items()} for row in csv.DictReader(handle)]

    @cached_property
    def saved(self) -> dict:
        path = self.path / MODEL_FILE
        if not path.is_file():
            raise DataError(f"{self.path} has no {MODEL_FILE}; the plot needs the trained weights (runs save them since nnexp 0.1)")
        return torch.load(path, map_location="cpu", weights_only=False)

    @cached_property
    def bundle(self) -> DataBundle:
        from nnexp.data.loading import load_data

        return load_data(self.config.data)

    @cached_property
    def network(self) -> torch.nn.Module:
        from nnexp.factory import instantiate

        net = instantiate(OmegaConf.create(self.saved["model"]))(input_shape=tuple(self.saved["input_shape"]), out_features=self.saved["n_outputs"])
        state = self.saved["state_dict"]
        net.to(next(iter(state.values())).dtype)  # an L-BFGS fit keeps its float64 weights
        net.load_state_dict(state)
        return net.eval()

    def scale(self, X: np.ndarray) -> torch.Tensor:
        """Raw features to the network's input, with the scaling fitted during training."""
        features = self.saved["scaling"]["features"]
        X = np.asarray(X, dtype=np.float64)
        shape = tuple(self.saved["input_shape"])
        if X.ndim == 1 and len(shape) == 1:  # one sample, as scikit-learn refuses it: say how to pass it
            raise DataError(f"X has one dimension ({X.shape[0]} values): give a 2-D array of rows, X.reshape(1, -1) for one sample")
        if X.shape[1:] != shape and (X.ndim < 2 or int(np.prod(X.shape[1:])) != int(np.prod(shape))):
            raise DataError(f"X has rows of shape {X.shape[1:]}; this model takes rows of shape {shape} "
                            f"({int(np.prod(shape))} features), as it was trained")
        if features["kind"] == "standard":
            X = (X.reshape(len(X), -1) - features["mean"]) / features["scale"]
        elif features["kind"] == "pixels":
            X = (X / 255.0 - features["mean"]) / features["std"]
        return torch.as_tensor(X.reshape((len(X), *shape)), dtype=next(self.network.parameters()).dtype)

    @torch.no_grad()
    def outputs(self, X: np.ndarray) -> torch.Tensor:
        """Network outputs for raw inputs (logits, or standardised values for regression)."""
        inputs = self.scale(X)
        return torch.cat([self.network(inputs[i : i + 2048]) for i in range(0, len(inputs), 2048)])

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Class indices, or regression values in the target's original units."""
        predicted = self.task.predict(self.outputs(X)).numpy()
        if self.task.kind != "regression":
            return predicted
        mean, scale = self.saved["scaling"]["target_mean"], self.saved["scaling"]["target_scale"]
        values = predicted * scale + mean if mean is not None else predicted
        return values.ravel() if values.ndim == 2 and values.shape[1] == 1 else values  # (n,), as scikit-learn's

    def probabilities(self, X: np.ndarray) -> np.ndarray:
        """P(class 1) for binary tasks, the class probabilities (n, k) for multiclass."""
        return self.task.output_activation(self.outputs(X)).numpy()
