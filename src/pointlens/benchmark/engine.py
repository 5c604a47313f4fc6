"""The benchmark engine: scores every cloud with every method once, evaluates every metric group cell by
cell (cached, resumable, sharded under torchrun) and gathers the per-cloud values on rank 0."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from pointlens.benchmark.cells import cell_key, check_state, chunk_ranges, chunk_seed, explain_fn, run_fingerprint
from pointlens.benchmark.config import BenchmarkConfig
from pointlens.benchmark.tables import build_table, nanmean
from pointlens.errors import DataError, InvalidArgumentError, bad_argument
from pointlens.models.hooks import model_device
from pointlens.training import distributed as D
from pointlens.utils.io import save_npz
from pointlens.utils.progress import progress


def shared_faithfulness_drops(
    model: nn.Module,
    points: torch.Tensor,
    target: torch.Tensor,
    *,
    n_subsets: int,
    subset_size: int | None,
    seed: int,
    batch_size: int = 64,
):
    """The method-independent half of the faithfulness correlation: random subsets and the output drops.

    Calls :func:`pointlens.metrics.faithfulness.faithfulness_correlation` once with zero scores; for any
    method's scores ``s`` the metric is then ``pearson(Σ_{i∈S_j} s_i, drops_j)`` (see :func:`_fc_from_drops`),
    equal to calling ``faithfulness_correlation`` with ``s`` and the same ``seed`` (tested).

    Args:
        model: the classifier.
        points: ``(B, N, 3)``.
        target: ``(B,)`` long.
        n_subsets, subset_size, seed, batch_size: as ``faithfulness_correlation``.

    Returns:
        ``(subsets (B, S, m) long, drops (B, S) float64)``.
    """
    from pointlens.metrics.faithfulness import faithfulness_correlation

    zeros = torch.zeros(points.shape[:2], dtype=torch.float64)
    res = faithfulness_correlation(
        model,
        points,
        zeros,
        target,
        n_subsets=n_subsets,
        subset_size=subset_size,
        seed=seed,
        batch_size=batch_size,
    )
    return res.subsets.cpu(), res.output_drops.cpu()


def _fc_from_drops(scores: torch.Tensor, subsets: torch.Tensor, drops: torch.Tensor) -> torch.Tensor:
    from pointlens.stats import pearson
    from pointlens.utils.validate import as_scores

    s = as_scores(scores).cpu()
    b, n_sub, _ = subsets.shape
    sums = torch.gather(s.unsqueeze(1).expand(b, n_sub, s.shape[1]), 2, subsets).sum(2)
    return pearson(sums, drops)


@dataclass
class BenchmarkResult:
    """Outcome of :func:`run_benchmark` (complete on rank 0; on other ranks ``table`` is None).

    Attributes:
        table: the table object: ``columns`` (metric columns shown), ``rows`` (one dict per method:
            ``method``, every column's per-cloud mean or None, ``sanity_pass`` when the sanity group ran),
            ``directions`` (column -> ``"higher"``/``"lower"`` is better), ``n_clouds``, ``n_sanity_clouds``,
            ``mask_fraction`` (mean share of ground-truth points: the chance level of relevance mass
            accuracy), notes.
        per_cloud: ``{(method, group): {name: array}}``: per-cloud values ``(M,)`` (sanity: ``(S,)``) and
            curves (``cascading_curve (L, S)``, ``independent_curve (L, S)``, ``deletion_curve (M, F)``, ...).
        curves: ``{method: {"layers": [...], "cascading": [...], "independent": [...]}}`` mean sanity curves.
        computed: cells computed by this call, ``["method/group", ...]``; ``reused``: cells read from disk.
        seconds: wall seconds per computed cell on this rank.
        config: the validated :class:`BenchmarkConfig`.
    """

    table: dict | None
    per_cloud: dict
    curves: dict
    computed: list
    reused: list
    seconds: dict
    config: BenchmarkConfig

    def to_dict(self) -> dict:
        """The table object (what ``--json`` prints)."""
        return self.table


class _Engine:
    def __init__(self, model, dataset, config: BenchmarkConfig, out_dir, alt_points, device):
        self.model = model
        self.ds = dataset
        self.cfg = config
        self.out = Path(out_dir) if out_dir is not None else None
        self.device = torch.device(device) if device is not None else model_device(model)
        self.points = torch.from_numpy(np.ascontiguousarray(dataset.points, dtype=np.float32))
        self.alt = (
            None
            if alt_points is None
            else torch.from_numpy(np.ascontiguousarray(alt_points, dtype=np.float32))
        )
        self.m, self.n = self.points.shape[:2]
        self.chunks = chunk_ranges(self.m, config.chunk_size)
        self.mine = [self.chunks[i] for i in D.shard(len(self.chunks))]
        s = min(config.sanity_clouds, self.m)
        self.sanity_chunks = chunk_ranges(s, config.chunk_size)
        self.sanity_mine = [self.sanity_chunks[i] for i in D.shard(len(self.sanity_chunks))]
        self.n_sanity = s
        self.scores: dict[str, dict[int, np.ndarray]] = {}
        self.fc_cache: dict[int, tuple] = {}
        self.targets = self._targets()

    # ---------------------------------------------------------------- targets
    def _targets(self) -> torch.Tensor:
        labels = np.asarray(self.ds.labels)
        if self.cfg.target == "label" and labels.ndim == 1:
            return torch.from_numpy(labels.astype(np.int64))
        from pointlens.metrics.faithfulness import model_outputs

        out = torch.empty(self.m, dtype=torch.long)
        for ch in self.chunks:  # every rank predicts every chunk, in the same chunks: identical everywhere
            logits = model_outputs(
                self.model, self.points[ch.start : ch.stop].to(self.device), batch_size=self.cfg.batch_size
            )
            out[ch.start : ch.stop] = logits.argmax(1).cpu()
        return out

    def _chunk(self, ch: range, alt: bool = False):
        src = self.alt if alt else self.points
        return src[ch.start : ch.stop].to(self.device), self.targets[ch.start : ch.stop].to(self.device)

    # ---------------------------------------------------------------- files
    def _path(self, kind: str, name: str) -> Path | None:
        return None if self.out is None else self.out / kind / f"{name}.npz"

    def _load(self, path: Path | None, key: str, what: str) -> dict | None:
        if path is None or not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as z:
                data = {k: z[k] for k in z.files}
        except (OSError, ValueError) as e:
            raise DataError(
                f"{path}: unreadable benchmark {what} file ({e}); delete it or use --restart"
            ) from None
        if str(data.pop("key", "")) != key:
            raise InvalidArgumentError(
                f"out_dir: {path} holds a {what} computed with different settings (method options or metric "
                "settings); expected the same arguments as the first run: rerun with them, use a new --out, "
                "or pass --restart to discard the old results"
            )
        return data

    # ---------------------------------------------------------------- scores
    def method_scores(self, method: str, fingerprint: str) -> dict[int, np.ndarray]:
        """Scores of this rank's chunks (and of its sanity chunks' clouds are not needed)."""
        if method in self.scores:
            return self.scores[method]
        opts = self.cfg.options_for(method)
        key = cell_key(fingerprint, "scores", method, opts)
        path = self._path("scores", method)
        data = D.all_gather_object(self._load(path, key, "scores") is not None)[0]
        if data:
            full = self._load(path, key, "scores")["scores"]
            local = {ch.start: full[ch.start : ch.stop] for ch in self.mine}
            self.reused.append(f"{method}/scores")
        else:
            local = {}
            for ch in self.mine:
                pts, t = self._chunk(ch)
                s = explain_fn(method, opts, self.cfg.seed)(self.model, pts, t)
                local[ch.start] = s.detach().cpu().numpy()
            merged = self._merge(local)
            if D.is_main() and path is not None:
                save_npz(
                    path, scores=np.concatenate([merged[c.start] for c in self.chunks], 0), key=np.array(key)
                )
            self.computed.append(f"{method}/scores")
        self.scores[method] = local
        return local

    def _merge(self, local: dict) -> dict | None:
        parts = D.all_gather_object(local)
        if not D.is_main():
            return None
        merged = {}
        for p in parts:
            merged.update(p)
        return merged

    # ---------------------------------------------------------------- metric groups (one chunk)
    def _localisation(self, ch, s, method, opts):
        from pointlens.metrics.localisation import localisation_metrics

        mask = torch.from_numpy(np.asarray(self.ds.gt_mask[ch.start : ch.stop], dtype=bool))
        return {
            k: v.numpy() for k, v in localisation_metrics(torch.from_numpy(s), mask, k=self.cfg.topk).items()
        }

    def _faithfulness(self, ch, s, method, opts):
        from pointlens.metrics.faithfulness import deletion_curve, insertion_curve

        pts, t = self._chunk(ch)
        st = torch.from_numpy(s).to(self.device)
        dc = deletion_curve(
            self.model, pts, st, t, steps=self.cfg.deletion_steps, batch_size=self.cfg.batch_size
        )
        ic = insertion_curve(
            self.model, pts, st, t, steps=self.cfg.deletion_steps, batch_size=self.cfg.batch_size
        )
        if ch.start not in self.fc_cache:
            self.fc_cache[ch.start] = shared_faithfulness_drops(
                self.model,
                pts,
                t,
                n_subsets=self.cfg.fc_subsets,
                subset_size=self.cfg.fc_subset_size,
                seed=chunk_seed(self.cfg.seed, ch.start, 1),
                batch_size=self.cfg.batch_size,
            )
        subsets, drops = self.fc_cache[ch.start]
        return {
            "deletion_auc": dc.auc.cpu().numpy(),
            "insertion_auc": ic.auc.cpu().numpy(),
            "faithfulness_correlation": _fc_from_drops(torch.from_numpy(s), subsets, drops).numpy(),
            "deletion_curve": dc.probabilities.cpu().numpy(),
            "insertion_curve": ic.probabilities.cpu().numpy(),
            "fractions": np.tile(dc.fractions.cpu().numpy(), (len(ch), 1)),
        }

    def _complexity(self, ch, s, method, opts):
        from pointlens.metrics.complexity import entropy_complexity, sparseness

        st = torch.from_numpy(s)
        return {
            "sparseness": sparseness(st).numpy(),
            "entropy": entropy_complexity(st, normalise=True).numpy(),
        }

    def _robustness(self, ch, s, method, opts):
        from pointlens.metrics.robustness import max_sensitivity, resampling_consistency

        pts, t = self._chunk(ch)
        explain = explain_fn(method, opts, self.cfg.seed)
        sens = max_sensitivity(
            self.model,
            pts,
            explain,
            t,
            radius=self.cfg.sensitivity_radius,
            n_samples=self.cfg.sensitivity_samples,
            seed=chunk_seed(self.cfg.seed, ch.start, 2),
        )
        out = {"max_sensitivity": sens.cpu().numpy()}
        if self.alt is not None:
            alt_pts, _ = self._chunk(ch, alt=True)
            alt_s = explain(self.model, alt_pts, t)
            out["resampling_consistency"] = (
                resampling_consistency(pts, torch.from_numpy(s).to(self.device), alt_pts, alt_s).cpu().numpy()
            )
        else:
            out["resampling_consistency"] = np.full(len(ch), np.nan)
        return out

    def _sanity(self, ch, s, method, opts):
        from pointlens.metrics.sanity import model_randomisation, random_logit_test

        pts, t = self._chunk(ch)
        explain = explain_fn(method, opts, self.cfg.seed)
        cas = model_randomisation(self.model, pts, explain, t, mode="cascading", seed=self.cfg.seed)
        ind = model_randomisation(self.model, pts, explain, t, mode="independent", seed=self.cfg.seed)
        out = {"cascading_spearman": cas.steps[-1].spearman.cpu().numpy()}
        for name, res in (("cascading", cas), ("independent", ind)):
            for what in ("spearman", "spearman_abs", "topk_intersection"):
                out[f"{name}_{what}_curve"] = (
                    torch.stack([getattr(st, what) for st in res.steps], 1).cpu().numpy()
                )
        with np.errstate(all="ignore"):
            ind_curve = out["independent_spearman_curve"]
            ok = np.isfinite(ind_curve)
            cnt = ok.sum(1)
            out["independent_spearman"] = np.where(
                cnt > 0, np.where(ok, ind_curve, 0).sum(1) / np.maximum(cnt, 1), np.nan
            )
        rl = random_logit_test(self.model, pts, explain, t, seed=chunk_seed(self.cfg.seed, ch.start, 3))
        out["random_logit_spearman"] = rl.spearman.cpu().numpy()
        self.layer_names = [st.layer for st in cas.steps]
        return out

    # ---------------------------------------------------------------- one cell
    def cell(self, method: str, group: str, fingerprint: str) -> dict:
        opts = self.cfg.options_for(method)
        key = cell_key(fingerprint, "cell", method, opts, group)
        path = self._path("cells", f"{method}__{group}")
        done = D.all_gather_object(self._load(path, key, "cell") is not None)[0]
        if done:
            self.reused.append(f"{method}/{group}")
            return self._load(path, key, "cell") if D.is_main() else {}
        t0 = time.perf_counter()
        chunks = self.sanity_mine if group == "sanity" else self.mine
        all_chunks = self.sanity_chunks if group == "sanity" else self.chunks
        fn = getattr(self, f"_{group}")
        local = {}
        if group == "sanity":
            for ch in chunks:
                local[ch.start] = fn(ch, None, method, opts)
        else:
            scores = self.method_scores(method, fingerprint)
            for ch in chunks:
                local[ch.start] = fn(ch, scores[ch.start], method, opts)
        if group == "sanity":
            names = D.all_gather_object(getattr(self, "layer_names", None))
            layers = next((n for n in names if n is not None), [])
        merged = self._merge(local)
        self.seconds[f"{method}/{group}"] = time.perf_counter() - t0
        self.computed.append(f"{method}/{group}")
        if not D.is_main():
            return {}
        values = {}
        for name in merged[all_chunks[0].start]:
            values[name] = np.concatenate([merged[c.start][name] for c in all_chunks], 0)
        if group == "sanity":
            values["layers"] = np.array(layers, dtype=str)
        if path is not None:
            save_npz(path, key=np.array(key), **values)
        return values


def run_benchmark(
    model: nn.Module,
    dataset,
    config: BenchmarkConfig | None = None,
    *,
    out_dir=None,
    alt_points=None,
    restart: bool = False,
    device=None,
) -> BenchmarkResult:
    """Run every method x metric group on ``dataset`` (resumable; sharded under torchrun).

    Args:
        model: classifier mapping ``(B, N, 3)`` to logits ``(B, C)``; put in ``eval()`` mode by the caller
            (methods run it in eval mode; metrics use it as it is). Never modified.
        dataset: :class:`~pointlens.data.dataset.PointCloudDataset` with ``points (M, N, 3)``, ``labels``
            and, for the localisation group, ``gt_mask (M, N)`` (the group is skipped without it).
        config: :class:`BenchmarkConfig` (default settings when None).
        out_dir: folder for ``cells/``, ``scores/`` and ``benchmark_state.json`` (None: nothing cached).
        alt_points: optional ``(M, N', 3)`` second sampling of the same shapes for the resampling
            consistency (:func:`alternate_sampling`); without it that column is None.
        restart: delete the cached cells and scores of ``out_dir`` first.
        device: torch device of the model (default: that of its parameters).

    Returns:
        :class:`BenchmarkResult` (the table on rank 0).

    Raises:
        InvalidArgumentError: bad config or data, or ``out_dir`` holding a run with other settings.
    """
    cfg = (config or BenchmarkConfig()).validate()
    if not isinstance(model, nn.Module):
        raise bad_argument(
            "model", type(model).__name__, "a torch.nn.Module mapping (B, N, 3) to logits (B, C)"
        )
    if not hasattr(dataset, "points") or len(dataset) == 0:
        raise bad_argument("dataset", type(dataset).__name__, "a PointCloudDataset with at least one cloud")
    if alt_points is not None:
        alt_points = np.asarray(alt_points, dtype=np.float32)
        if alt_points.ndim != 3 or alt_points.shape[0] != len(dataset) or alt_points.shape[2] != 3:
            raise bad_argument("alt_points", f"shape {alt_points.shape}", f"({len(dataset)}, N', 3)")
    groups = cfg.groups()
    notes = []
    if "localisation" in groups and dataset.gt_mask is None:
        groups.remove("localisation")
        notes.append("localisation skipped: the data has no ground-truth mask (gt_mask)")
    if "robustness" in groups and alt_points is None:
        notes.append("resampling_consistency: no second sampling of the clouds is available for this data")
    fingerprint = run_fingerprint(model, dataset, alt_points, cfg)
    out = Path(out_dir) if out_dir is not None else None
    if out is not None:
        check_state(out, fingerprint, restart)
    eng = _Engine(model, dataset, cfg, out, alt_points, device)
    eng.computed, eng.reused, eng.seconds = [], [], {}
    per_cloud = {}
    cells = [(m, g) for m in cfg.methods for g in groups]
    for method, group in progress(cells, desc="benchmark cells"):
        per_cloud[(method, group)] = eng.cell(method, group, fingerprint)
    D.barrier()
    if not D.is_main():
        return BenchmarkResult(None, {}, {}, eng.computed, eng.reused, eng.seconds, cfg)
    table = build_table(cfg, groups, per_cloud, dataset, eng, notes)
    curves = {}
    for method in cfg.methods:
        v = per_cloud.get((method, "sanity"))
        if v:
            curves[method] = {
                "layers": [str(x) for x in v["layers"]],
                "cascading": [nanmean(c) for c in v["cascading_spearman_curve"].T],
                "independent": [nanmean(c) for c in v["independent_spearman_curve"].T],
            }
    return BenchmarkResult(table, per_cloud, curves, eng.computed, eng.reused, eng.seconds, cfg)


def alternate_sampling(spec: str, dataset, *, split, num_points: int, seed: int = 0, limit=None):
    """A second sampling of the same shapes, for the resampling-consistency metric.

    * Data whose clouds have more points than used (``dataset.meta["source_points"] > num_points``): the
      same spec loaded again with ``sampling="random"`` and seed ``seed + 1``.
    * ShapeParts without an explicit ``points`` option: regenerated with twice the points (the generator's
      shape and label streams do not depend on the point count, so the shapes are the same) and subsampled
      at random to ``num_points``.

    Both are accepted only when labels (and names, when present) match the dataset cloud by cloud.

    Args:
        spec: the data spec of ``dataset``.
        dataset: the benchmark's dataset (from :func:`pointlens.data.load_dataset`).
        split, num_points, seed, limit: the arguments ``dataset`` was loaded with.

    Returns:
        ``(alt_points (M, num_points, 3) float32 or None, note str)``.
    """
    from pointlens.data import load_dataset
    from pointlens.data.spec import parse_spec

    kind, _, options = parse_spec(spec)
    source = int(dataset.meta.get("source_points") or dataset.num_points)
    if source > num_points:
        alt_spec, how = spec, f"a second random subsample of the {source} source points (seed {seed + 1})"
    elif kind == "shapeparts" and "points" not in options:
        sep = "," if ":" in spec else ":"
        alt_spec = f"{spec}{sep}points={2 * num_points}"
        how = f"ShapeParts regenerated with {2 * num_points} points, random subsample (seed {seed + 1})"
    else:
        return None, "not available: the clouds have no more points than used"
    alt = load_dataset(
        alt_spec, split=split, num_points=num_points, sampling="random", seed=seed + 1, limit=limit
    )
    same = len(alt) == len(dataset) and np.array_equal(np.asarray(alt.labels), np.asarray(dataset.labels))
    if same and dataset.names is not None and alt.names is not None:
        same = np.array_equal(np.asarray(alt.names), np.asarray(dataset.names))
    if not same:
        return None, "not available: the second sampling does not match the clouds one by one"
    return alt.points, how
