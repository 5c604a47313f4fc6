"""Model-parameter randomisation and random-logit tests: layer order, the caller's model left untouched,
the claimed layers really re-initialised, and the verdicts for model-blind vs. gradient explanations."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from pointlens.errors import InvalidArgumentError
from pointlens.metrics.sanity import (
    LayerGroup,
    explanation_similarity,
    model_randomisation,
    random_logit_test,
    randomisation_layers,
)

GROUPS = [("head.2",), ("head.0",), ("conv2",), ("conv1", "bn1")]


class Toy(nn.Module):
    def __init__(self, classes=4):
        super().__init__()
        self.conv1 = nn.Conv1d(3, 8, 1)
        self.bn1 = nn.BatchNorm1d(8)
        self.conv2 = nn.Conv1d(8, 16, 1)
        self.head = nn.Sequential(nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, classes))

    def forward(self, pts):
        h = torch.relu(self.bn1(self.conv1(pts.transpose(1, 2))))
        return self.head(self.conv2(h).max(-1).values)


def _model():
    torch.manual_seed(0)
    m = Toy()
    with torch.no_grad():                        # "trained" norm layer: not equal to its reset values
        m.bn1.weight.uniform_(0.5, 1.5)
        m.bn1.bias.uniform_(-0.5, 0.5)
        m.bn1.running_mean.uniform_(-0.2, 0.2)
        m.bn1.running_var.uniform_(0.5, 2.0)
    return m.eval()


def _points(b=2, n=32):
    return torch.randn(b, n, 3, generator=torch.Generator().manual_seed(1))


def grad_explain(model, pts, target):
    """|gradient| saliency via autograd.grad (touches no parameter .grad)."""
    x = pts.detach().clone().requires_grad_(True)
    out = model(x).gather(1, target.view(-1, 1)).sum()
    (g,) = torch.autograd.grad(out, x)
    return g.norm(dim=-1)


def blind_explain(model, pts, target):
    """An 'explanation' that ignores the model: distance from the origin."""
    return pts.norm(dim=-1)


def test_layer_order_reverse_registration_with_norms_grouped():
    groups = randomisation_layers(_model())
    assert [g.modules for g in groups] == GROUPS
    assert [g.name for g in groups] == ["head.2", "head.0", "conv2", "conv1"]


def test_randomisation_leaves_callers_model_untouched():
    model = _model()
    model.head.train()                                          # mixed modes must survive
    model.conv2.weight.requires_grad_(False)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    modes = {n: m.training for n, m in model.named_modules()}
    grads = {n: p.requires_grad for n, p in model.named_parameters()}
    for mode in ("cascading", "independent"):
        model_randomisation(model, _points(), grad_explain, mode=mode)
    random_logit_test(model, _points(), grad_explain)
    after = model.state_dict()
    assert state.keys() == after.keys()
    assert all(torch.equal(state[k], after[k]) for k in state)
    assert modes == {n: m.training for n, m in model.named_modules()}
    assert grads == {n: p.requires_grad for n, p in model.named_parameters()}


def _recording(explain):
    seen = []

    def wrapped(model, pts, target):
        seen.append({k: v.detach().clone() for k, v in model.state_dict().items()})
        return explain(model, pts, target)
    return wrapped, seen


def _changed_modules(before, after):
    """Modules (by state-dict prefix) whose tensors differ."""
    return {k.rsplit(".", 1)[0] for k in before if not torch.equal(before[k], after[k])}


@pytest.mark.parametrize("mode", ["cascading", "independent"])
def test_randomisation_changes_exactly_the_claimed_layers(mode):
    model = _model()
    explain, seen = _recording(grad_explain)
    res = model_randomisation(model, _points(), explain, mode=mode, seed=5)
    assert len(seen) == 1 + len(GROUPS) and len(res.steps) == len(GROUPS)
    original = seen[0]
    assert _changed_modules({k: v for k, v in model.state_dict().items()}, original) == set()
    for i, step in enumerate(res.steps):
        claimed = [m for g in (GROUPS[:i + 1] if mode == "cascading" else GROUPS[i:i + 1]) for m in g]
        assert step.modules == tuple(claimed)
        assert step.changed == GROUPS[i]
        assert _changed_modules(original, seen[i + 1]) == set(claimed)
    table = res.table()
    assert [row["layer"] for row in table] == ["head.2", "head.0", "conv2", "conv1"]
    assert set(table[0]) >= {"step", "layer", "spearman", "spearman_abs", "topk_intersection", "changed"}


def test_randomisation_verdicts_and_determinism():
    model, pts = _model(), _points()
    blind = model_randomisation(model, pts, blind_explain)
    for st in blind.steps:                          # a model-blind explanation fails the check: unchanged
        assert torch.all(st.spearman == 1.0) and torch.all(st.topk_intersection == 1.0)
    grad = model_randomisation(model, pts, grad_explain, seed=0)
    last = grad.steps[-1]
    assert torch.all(last.spearman < 0.9)           # every layer random: gradients change
    again = model_randomisation(model, pts, grad_explain, seed=0)
    assert grad.table() == again.table()
    assert torch.equal(grad.target, model(pts).argmax(1))


def test_explicit_layers_and_bad_arguments():
    model, pts = _model(), _points()
    res = model_randomisation(model, pts, grad_explain, layers=["head", ["conv2", "conv1"]])
    assert res.steps[0].modules == ("head.0", "head.2")
    assert res.steps[1].layer == "conv2+conv1"
    assert res.steps[1].modules == ("head.0", "head.2", "conv2", "conv1")
    res = model_randomisation(model, pts, grad_explain, layers=[LayerGroup("top", ("head.2",))])
    assert res.steps[0].layer == "top"
    with pytest.raises(InvalidArgumentError, match="layer"):
        model_randomisation(model, pts, grad_explain, layers=["nope"])
    with pytest.raises(InvalidArgumentError, match="mode"):
        model_randomisation(model, pts, grad_explain, mode="bottom-up")
    with pytest.raises(InvalidArgumentError, match="explain"):
        model_randomisation(model, pts, lambda m, x, t: torch.zeros(3))


def test_explanation_similarity_hand_values():
    sim = explanation_similarity(torch.tensor([[1.0, 2, 3, 4]]), torch.tensor([[4.0, 3, 2, 1]]), k=2)
    assert sim["spearman"].item() == pytest.approx(-1.0)
    assert sim["spearman_abs"].item() == pytest.approx(-1.0)
    assert sim["topk_intersection"].item() == 0.0
    sim = explanation_similarity(torch.tensor([[-3.0, 1, 2, 0]]), torch.tensor([[3.0, 1, 2, 0]]), k=1)
    assert sim["spearman_abs"].item() == pytest.approx(1.0)        # same magnitudes, different signs
    assert sim["topk_intersection"].item() == 0.0                  # top-1: point 2 vs point 0


def test_random_logit_test():
    model, pts = _model(), _points(b=40)
    res = random_logit_test(model, pts, blind_explain, seed=1)
    assert torch.all(res.other != res.target)
    assert len(set(res.other.tolist())) >= 3                       # drawn among all the other classes
    fixed = random_logit_test(model, pts, blind_explain, target=2, seed=1)
    assert torch.all(fixed.target == 2) and set(fixed.other.tolist()) == {0, 1, 3}
    assert torch.all(res.spearman == 1.0)                          # class-blind: fails the test
    grad = random_logit_test(model, pts, grad_explain, seed=1)
    assert torch.equal(grad.other, res.other)                      # same seed, same classes
    assert grad.summary()["spearman"] < 0.99
