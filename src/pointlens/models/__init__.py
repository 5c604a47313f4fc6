"""pointlens.models: point-cloud classifiers (PointNet, PointNet++, DGCNN), registry, checkpoints, hooks.

Every model maps ``(B, N, 3)`` points to ``(B, C)`` logits and exposes ``config``, ``pool_layer``,
``pointwise_until_pool`` and ``head`` (see docs/models.md).
"""

from pointlens.models.adapters import ChannelsFirst, ModelAdapter
from pointlens.models.checkpoint import LoadedCheckpoint, load_checkpoint, save_checkpoint
from pointlens.models.dgcnn import DGCNN
from pointlens.models.layers import GlobalMaxPool, PointClassifier
from pointlens.models.pointnet import PointNet
from pointlens.models.pointnet2 import PointNet2
from pointlens.models.registry import MODELNET40_CLASSES, create_model, list_models, register_model
from pointlens.models.user import UserModelSpec, load_user_model, rebuild_user_model

__all__ = [
    "ChannelsFirst",
    "ModelAdapter",
    "DGCNN",
    "MODELNET40_CLASSES",
    "GlobalMaxPool",
    "LoadedCheckpoint",
    "PointClassifier",
    "PointNet",
    "PointNet2",
    "create_model",
    "list_models",
    "load_checkpoint",
    "load_user_model",
    "rebuild_user_model",
    "register_model",
    "save_checkpoint",
    "UserModelSpec",
]
