"""pointlens — what does my 3D network look at, and can I trust that answer?

Data flows one way: ``data -> models -> attribution/perturb/maximize/explainer -> metrics -> report``;
the CLI (``pointlens ...``) is a thin layer over the library.

Conventions used everywhere:

* points are ``(B, N, 3)`` float32 tensors; per-point scores ``(B, N)``; masks ``(B, C, N)``;
* a model is any ``nn.Module`` mapping ``(B, N, 3)`` points to logits ``(B, C)``;
* errors are subclasses of :class:`pointlens.errors.PointlensError` whose message names the argument,
  what was received and what is accepted.
"""

__version__ = "0.1.0"

from pointlens.errors import (  # noqa: F401
    CheckpointError,
    DataError,
    InvalidArgumentError,
    PointlensError,
)
