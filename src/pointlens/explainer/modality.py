"""What an input modality supplies to the explainer objective: how a mask is applied, and how smooth it is.

The objective (:mod:`pointlens.explainer.objective`) is written once for every modality. A modality is any
object with three methods (a :class:`typing.Protocol`, so no base class is needed):

* ``prepare(x) -> state``: constants of a batch computed once from the clean input (for point clouds the
  cloud's centre and its k-NN graph; for images nothing, or a blurred copy);
* ``apply(x, mask, state) -> x'``: the input with ``mask`` applied; ``mask`` has the input's per-element
  shape without channels (points ``(B, N)``, images ``(B, H, W)``), values in ``[0, 1]``; 1 keeps an element,
  0 removes it; differentiable with respect to ``mask``;
* ``smoothness(mask, state) -> (B,)``: the smoothness penalty of each mask (total variation over the
  modality's neighbourhood structure).

The point-cloud modality is :class:`pointlens.explainer.points.PointModality`. An image modality needs only
these three methods (``apply``: ``m * x`` or a blend with a blurred image; ``smoothness``: the anisotropic
total variation of the reflection-padded mask, the authors' code).
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import torch


@runtime_checkable
class Modality(Protocol):
    """The two operations (plus a per-batch preparation) the shared objective needs from a modality."""

    name: str

    def prepare(self, x: torch.Tensor) -> Any:
        """Per-batch constants computed from the clean input ``x`` (anything; passed back unchanged)."""

    def apply(self, x: torch.Tensor, mask: torch.Tensor, state: Any) -> torch.Tensor:
        """``x`` with ``mask`` applied (1 keeps, 0 removes); same shape as ``x``; differentiable in ``mask``."""

    def smoothness(self, mask: torch.Tensor, state: Any) -> torch.Tensor:
        """Smoothness penalty per mask: ``(B, ...)`` mask -> ``(B,)``."""
