"""Training and evaluation of point-cloud classifiers (single process or DDP under torchrun)."""

from pointlens.training.evaluate import EvalResult, evaluate, predict  # noqa: F401
from pointlens.training.train import TrainConfig, TrainResult, train  # noqa: F401
