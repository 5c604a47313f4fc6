"""Reconstruction study runs (``pointlens recon run``): the overall table per frame, the paper's claims checked
on these numbers, per-class bars and score distributions (``results.json``, ``per_class_*.png``,
``distributions_*.png``)."""

from __future__ import annotations

from pointlens.report.run import ArtefactError, RunView
from pointlens.report.sections import Section, register_section

LOWER_IS_BETTER = ("chamfer",)


def build(run: RunView, page) -> None:
    res = run.json("results.json")
    frames = res.get("frames") if isinstance(res, dict) else None
    if not isinstance(frames, dict) or not frames:
        raise ArtefactError(f"results.json in {run.path} has no 'frames'")
    for frame, s in frames.items():
        page.heading(f"{frame}-centred frame ({s.get('n_train', '?')} training, {s.get('n_test', '?')} test "
                     "shapes)", level=3)
        overall = s.get("overall") or {}
        metrics = []
        for v in overall.values():
            metrics += [m for m in v if m not in metrics]
        page.table([{"method": meth, **{f"{m} {'↓' if m in LOWER_IS_BETTER else '↑'}": v.get(m) for m in metrics}}
                    for meth, v in overall.items()], caption="mean over the test shapes")
        if overall:
            methods = list(overall)
            data = [{"type": "bar", "name": m, "x": methods, "y": [overall[k].get(m) for k in methods],
                     "hovertemplate": f"%{{x}}: {m} = %{{y:.4f}}<extra></extra>"}
                    for m in metrics if m not in LOWER_IS_BETTER and not m.endswith("_median")]
            page.plotly({"data": data, "layout": {"barmode": "group", "margin": {"t": 20},
                                                  "yaxis": {"title": {"text": "score (higher is better)"}}}},
                        caption="overall scores per method (hover for values)", height=360)
        finding = s.get("finding")
        if isinstance(finding, dict):
            page.table([{"claim": k.replace("_", " "), "holds here": v} for k, v in finding.items()],
                       caption="Tatarchenko et al.'s claims on these numbers")
        for png, cap in ((f"per_class_{frame}.png", "per-class mean F@1% and IoU"),
                         (f"distributions_{frame}.png", "per-shape score distributions")):
            if run.has(png):
                page.image(run.rel(png), f"{frame}-centred: {cap}")
    if run.has("results.md"):
        page.raw(f'<p class="note">Full tables (per class, KS tests, Spearman): <a href="{run.rel("results.md")}">'
                 "results.md</a></p>")


register_section(Section("recon", "Reconstruction study", order=50, commands=("recon run",),
                         artefacts=("results.json",), build=build))
