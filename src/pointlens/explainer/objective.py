"""The explainer objectives, written once for every modality (docs/methods.md §3).

Stalder, Perraudin, Achanta, Perez-Cruz, Volpi, "What You See is What You Classify: Black Box Attributions"
(NeurIPS 2022). An explainer network gives per-class mask logits ``S (B, C, *spatial)`` for a frozen
classifier ``f``. With ``present (B, C)`` the classes in the label:

* target mask ``m_t = σ(max_{c present} S_c)``, non-target mask ``m_nt = σ(max_{c absent} S_c)``
  (0 when every class is present);
* ``x_t = apply(x, m_t)``, ``x_bg = apply(x, 1 - m_t)`` (the modality's mask application);
* ``L = L_c + λ_e L_e + λ_tv L_tv + λ_ac A + λ_t mean(m_t) + λ_nt mean(m_nt)``:

  - ``L_c``: classification loss of ``f(x_t)`` against the label: binary cross-entropy with logits, mean over
    clouds and classes (multi-label), or cross-entropy against the present class (single-label);
  - ``L_e``: mean over all elements of ``p log p`` with ``p = softmax(f(x_bg))`` (clamped at 1e-16 inside the
    log): minus the entropy, so minimising it makes the complement uninformative;
  - ``A``: area bounds. Per present class, ``v = σ(S_c)`` flattened and sorted descending; ``r^a`` is 1 for
    the first ``⌊a P⌋`` of the ``P`` entries, else 0; the class contributes
    ``mean_k[relu(r^{a_min}_k - v_k) + relu(v_k - r^{a_max}_k)]``; summed over the present classes of a cloud,
    averaged over the batch;
  - ``L_tv``: the modality's smoothness of ``m_t`` plus that of ``m_nt``, averaged over the batch.

RTIS (Dabkowski & Gal, "Real Time Image Saliency for Black Box Classifiers", NeurIPS 2017), the baseline the
paper trains with the same network: ``L = λ_tv TV(m_t) + λ_area (mean(m_t) + 5e-4)^β - λ_pres log p_c(x_t)
+ λ_dest p_c(x_bg)^γ``, where ``p_c`` is the probability of the present classes (softmax for single-label,
the mean sigmoid over the present classes for multi-label, whose log is taken of the same mean). Defaults:
``λ_area = 8, β = 0.3, λ_tv = 0.5, λ_pres = 0.3, λ_dest = 1, γ = 1`` — the coefficients of the public PyTorch
implementation of the authors' model as we recall it (not verified against the paper's table; every weight is a
parameter).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from pointlens.errors import bad_argument
from pointlens.utils.validate import check_float

#: loss weights of the paper (docs/methods.md §3): VGG-16 and ResNet-50 explananda on VOC
PRESETS = {
    "vgg16": dict(entropy=1.0, tv=1.0, area=1.0, target=0.1, non_target=0.3),
    "resnet50": dict(entropy=3.0, tv=1.0, area=0.8, target=0.01, non_target=0.3),
}


@dataclass
class ObjectiveWeights:
    """Weights of the Stalder et al. objective (default: the paper's VGG-16 preset) and the area bounds.

    Attributes:
        entropy: λ_e, weight of the negative entropy of the complement.
        tv: λ_tv, weight of the smoothness of ``m_t`` and ``m_nt``.
        area: λ_ac, weight of the area bounds ``A``.
        target: λ_t, weight of ``mean(m_t)``.
        non_target: λ_nt, weight of ``mean(m_nt)``.
        a_min: the mask must cover at least this share of the input (0.05).
        a_max: mask values are not punished up to this share (0.3).
    """

    entropy: float = 1.0
    tv: float = 1.0
    area: float = 1.0
    target: float = 0.1
    non_target: float = 0.3
    a_min: float = 0.05
    a_max: float = 0.3

    @classmethod
    def preset(cls, name: str, **overrides) -> "ObjectiveWeights":
        """The paper's weights for ``"vgg16"`` or ``"resnet50"``, with ``overrides`` applied."""
        if name not in PRESETS:
            raise bad_argument("preset", name, "one of " + ", ".join(PRESETS))
        return cls(**{**PRESETS[name], **overrides}).validate()

    def validate(self) -> "ObjectiveWeights":
        for k, v in asdict(self).items():
            check_float(k, v, minimum=0.0)
        check_float("a_min", self.a_min, maximum=1.0)
        check_float("a_max", self.a_max, maximum=1.0)
        if self.a_min > self.a_max:
            raise bad_argument("a_min", self.a_min, f"at most a_max = {self.a_max}")
        return self


@dataclass
class RTISWeights:
    """Weights of the RTIS objective (Dabkowski & Gal 2017; see the module docstring).

    Attributes:
        tv: weight of the smoothness of the mask.
        area: weight of the area term ``(mean(m) + 5e-4)^area_power``.
        area_power: β.
        preserve: weight of ``-log p_c(x_t)``.
        destroy: weight of ``p_c(x_bg)^destroy_power``.
        destroy_power: γ.
    """

    tv: float = 0.5
    area: float = 8.0
    area_power: float = 0.3
    preserve: float = 0.3
    destroy: float = 1.0
    destroy_power: float = 1.0

    def validate(self) -> "RTISWeights":
        for k, v in asdict(self).items():
            check_float(k, v, minimum=0.0)
        return self


@dataclass
class ObjectiveTerms:
    """The value of an objective and its terms (each a scalar tensor; ``total`` carries the gradient).

    Attributes:
        total: the weighted sum that is minimised.
        terms: ``{name: unweighted scalar}`` (Stalder: ``classification, entropy, area, tv, target_area,
            non_target_area``; RTIS: ``tv, area, preserve, destroy``).
        target_mask: ``(B, *spatial)`` ``m_t``.
        non_target_mask: ``(B, *spatial)`` ``m_nt`` (zeros for RTIS).
    """

    total: torch.Tensor
    terms: dict
    target_mask: torch.Tensor
    non_target_mask: torch.Tensor

    def as_floats(self) -> dict:
        """``{"total": .., name: ..}`` as python floats."""
        return {"total": float(self.total.detach()), **{k: float(v.detach()) for k, v in self.terms.items()}}


def _check(mask_logits: torch.Tensor, present) -> torch.Tensor:
    if not isinstance(mask_logits, torch.Tensor) or mask_logits.dim() < 3:
        raise bad_argument("mask_logits", getattr(mask_logits, "shape", type(mask_logits).__name__),
                           "a (B, C, ...) tensor of per-class mask logits")
    p = torch.as_tensor(present, device=mask_logits.device)
    if tuple(p.shape) != tuple(mask_logits.shape[:2]):
        raise bad_argument("present", f"shape {tuple(p.shape)}", f"shape {tuple(mask_logits.shape[:2])} (B, C)")
    p = p > 0.5 if p.is_floating_point() else p.bool()
    if not bool(p.any(1).all()):
        raise bad_argument("present", "a cloud without any present class", "at least one present class per input")
    return p


def class_masks(mask_logits: torch.Tensor, present) -> tuple[torch.Tensor, torch.Tensor]:
    """Target and non-target masks: ``σ(max over present S_c)`` and ``σ(max over absent S_c)``.

    Args:
        mask_logits: ``(B, C, *spatial)`` per-class mask logits.
        present: ``(B, C)`` bool (or 0/1) classes present in each input's label (at least one per input).

    Returns:
        ``(m_t, m_nt)``, each ``(B, *spatial)``; ``m_nt`` is 0 for an input with every class present.
    """
    p = _check(mask_logits, present)
    shape = p.shape + (1,) * (mask_logits.dim() - 2)
    neg = torch.finfo(mask_logits.dtype).min
    pm = p.view(shape)
    m_t = torch.sigmoid(mask_logits.masked_fill(~pm, neg).amax(1))
    m_nt = torch.sigmoid(mask_logits.masked_fill(pm, neg).amax(1))
    none_absent = p.all(1).view((-1,) + (1,) * (mask_logits.dim() - 2))
    return m_t, torch.where(none_absent, torch.zeros_like(m_nt), m_nt)


def area_bounds(mask_logits: torch.Tensor, present, a_min: float = 0.05, a_max: float = 0.3) -> torch.Tensor:
    """The area loss ``A`` with sorted mask values (see the module docstring).

    Args:
        mask_logits: ``(B, C, *spatial)``.
        present: ``(B, C)`` present classes.
        a_min: lower bound of the covered share.
        a_max: upper bound up to which values are not punished.

    Returns:
        scalar: per cloud the sum over its present classes of the class's mean bound violation, averaged over
        the batch.
    """
    p = _check(mask_logits, present)
    v = torch.sigmoid(mask_logits.flatten(2)).sort(dim=2, descending=True).values  # (B, C, P)
    n = v.shape[2]
    pos = torch.arange(n, device=v.device)
    r_min = (pos < math.floor(a_min * n)).to(v.dtype)
    r_max = (pos < math.floor(a_max * n)).to(v.dtype)
    per_class = (F.relu(r_min - v) + F.relu(v - r_max)).mean(2)  # (B, C)
    return (per_class * p.to(v.dtype)).sum(1).mean()


def negative_entropy(logits: torch.Tensor) -> torch.Tensor:
    """``mean(p log p)`` over all elements, ``p = softmax(logits)`` clamped at 1e-16 in the log. Scalar."""
    p = torch.softmax(logits, dim=1)
    return (p * torch.log(p.clamp_min(1e-16))).mean()


def classification_loss(logits: torch.Tensor, present: torch.Tensor, multilabel: bool) -> torch.Tensor:
    """BCE with logits against the multi-hot ``present`` (multi-label), or cross-entropy against the single
    present class (single-label; ``present`` must have exactly one class per input). Scalar."""
    if multilabel:
        return F.binary_cross_entropy_with_logits(logits, present.to(logits.dtype))
    if not bool((present.sum(1) == 1).all()):
        raise bad_argument("present", "several present classes", "exactly one class per input (single-label)")
    return F.cross_entropy(logits, present.to(torch.long).argmax(1))


def _classify(classifier: nn.Module, x: torch.Tensor) -> torch.Tensor:
    out = classifier(x)
    if not isinstance(out, torch.Tensor) or out.dim() != 2 or out.shape[0] != x.shape[0]:
        raise bad_argument("classifier", f"output {getattr(out, 'shape', type(out).__name__)}", "logits (B, C)")
    return out


def stalder_objective(classifier: nn.Module, modality, x: torch.Tensor, mask_logits: torch.Tensor, present, *,
                      weights: ObjectiveWeights | None = None, multilabel: bool = True,
                      state=None) -> ObjectiveTerms:
    """The objective of Stalder et al. for one batch (see the module docstring for every term).

    Args:
        classifier: the frozen explanandum, ``x -> (B, C)`` logits (gradients flow through it to the masks).
        modality: a :class:`pointlens.explainer.modality.Modality` (mask application + smoothness).
        x: the clean inputs, e.g. ``(B, N, 3)`` clouds.
        mask_logits: ``(B, C, *spatial)`` explainer output, e.g. ``(B, C, N)``.
        present: ``(B, C)`` bool/0-1 classes in the label (single-label: one per input, the label or the
            prediction).
        weights: :class:`ObjectiveWeights` (default: the paper's VGG-16 weights).
        multilabel: BCE (True) or cross-entropy (False) for ``L_c``.
        state: ``modality.prepare(x)`` when already computed.

    Returns:
        :class:`ObjectiveTerms` with terms ``classification, entropy, area, tv, target_area,
        non_target_area``.
    """
    w = (weights or ObjectiveWeights()).validate()
    p = _check(mask_logits, present)
    st = modality.prepare(x) if state is None else state
    m_t, m_nt = class_masks(mask_logits, p)
    logits_t = _classify(classifier, modality.apply(x, m_t, st))
    logits_bg = _classify(classifier, modality.apply(x, 1 - m_t, st))
    terms = {
        "classification": classification_loss(logits_t, p, multilabel),
        "entropy": negative_entropy(logits_bg),
        "area": area_bounds(mask_logits, p, w.a_min, w.a_max),
        "tv": (modality.smoothness(m_t, st) + modality.smoothness(m_nt, st)).mean(),
        "target_area": m_t.mean(),
        "non_target_area": m_nt.mean(),
    }
    total = (terms["classification"] + w.entropy * terms["entropy"] + w.area * terms["area"]
             + w.tv * terms["tv"] + w.target * terms["target_area"] + w.non_target * terms["non_target_area"])
    return ObjectiveTerms(total, terms, m_t, m_nt)


def present_probability(logits: torch.Tensor, present: torch.Tensor, multilabel: bool) -> torch.Tensor:
    """``p_c`` of RTIS per input: mean sigmoid over the present classes (multi-label) or the softmax
    probability of the present class (single-label). ``(B,)``."""
    pf = present.to(logits.dtype)
    if multilabel:
        return (torch.sigmoid(logits) * pf).sum(1) / pf.sum(1)
    return (torch.softmax(logits, 1) * pf).sum(1)


def rtis_objective(classifier: nn.Module, modality, x: torch.Tensor, mask_logits: torch.Tensor, present, *,
                   weights: RTISWeights | None = None, multilabel: bool = True, state=None) -> ObjectiveTerms:
    """The real-time saliency objective of Dabkowski & Gal on the same target mask ``m_t``.

    Args: as :func:`stalder_objective`, with :class:`RTISWeights`.

    Returns:
        :class:`ObjectiveTerms` with terms ``tv, area, preserve, destroy``.
    """
    w = (weights or RTISWeights()).validate()
    p = _check(mask_logits, present)
    st = modality.prepare(x) if state is None else state
    m_t, _ = class_masks(mask_logits, p)
    p_keep = present_probability(_classify(classifier, modality.apply(x, m_t, st)), p, multilabel)
    p_bg = present_probability(_classify(classifier, modality.apply(x, 1 - m_t, st)), p, multilabel)
    terms = {
        "tv": modality.smoothness(m_t, st).mean(),
        "area": (m_t.flatten(1).mean(1) + 5e-4).pow(w.area_power).mean(),
        "preserve": -torch.log(p_keep.clamp_min(1e-16)).mean(),
        "destroy": p_bg.clamp_min(0).pow(w.destroy_power).mean(),
    }
    total = (w.tv * terms["tv"] + w.area * terms["area"] + w.preserve * terms["preserve"]
             + w.destroy * terms["destroy"])
    return ObjectiveTerms(total, terms, m_t, torch.zeros_like(m_t))


OBJECTIVES = {"stalder": stalder_objective, "rtis": rtis_objective}
