"""Training and evaluation of point-cloud classifiers (single process or DDP under torchrun)."""

from pointlens.training.evaluate import (  # noqa: F401
    EvalResult,
    MultiLabelEvalResult,
    average_precision,
    evaluate,
    multilabel_report,
    predict,
)
from pointlens.training.train import TrainConfig, TrainResult, train  # noqa: F401
