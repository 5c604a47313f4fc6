"""The recognition-vs-reconstruction study (Tatarchenko et al., CVPR 2019) on point clouds.

One frame of the study (:func:`run_frame`):

1. every shape is rendered once (depth + silhouette, seeded random azimuth / elevation); the SAME views serve
   both frames;
2. the targets are the shapes in the frame's coordinates: ``object`` = canonical coordinates, ``viewer`` =
   rotated into the camera frame with the rotation used to render
   (:func:`pointlens.recon.render.to_viewer_frame`);
   all shapes (unit-sphere normalised by the data loader) are then scaled by 1/2, so every target lies in the
   unit cube ``[-0.5, 0.5]^3`` and ``d = 0.01`` is 1% of its side (the same fixed transform for every shape
   and method: no prediction is rescaled with its own bounding box);
3. four methods predict the target of every test image:
   ``encoder-decoder`` (CNN -> MLP point decoder trained with the squared Chamfer loss),
   ``clustering`` (K-means on the training targets' voxel grids, a CNN predicts the cluster, output = the
   cluster's medoid training target), ``retrieval`` (voxel-IoU distance matrix of the training targets ->
   classical MDS embedding, a CNN regresses the embedding, output = the nearest training target) and
   ``oracle-nn`` (the training target with the best voxel IoU to the test ground truth: an upper bound of
   retrieval on IoU);
4. every prediction is scored against the ground truth: voxel IoU, Chamfer (plain Euclidean, mean each way,
   average of the two directions) and F-score at 1% and 2% of the cube side (:mod:`pointlens.metrics.shape`).

:func:`summarize` reduces the per-shape scores to overall and per-class means, pairwise Kolmogorov–Smirnov
tests between the methods' per-class mean scores, and the Spearman correlation of per-class score with
training-set size. :func:`pointlens.recon.report.write_study` writes the tables and plots.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

import numpy as np
import torch
import torch.nn.functional as F

from pointlens import stats
from pointlens.data.dataset import PointCloudDataset
from pointlens.errors import DataError, bad_argument
from pointlens.metrics.shape import chamfer_distance, compare_shapes, voxel_iou, voxelize_points
from pointlens.recon import baselines
from pointlens.recon.models import EncoderDecoder, ImageEncoder, ImageHead, PointDecoder, fit, predict
from pointlens.recon.render import (
    PROJECTIONS,
    UP_AXES,
    camera_rotation,
    network_input,
    random_views,
    render_depth,
)
from pointlens.utils.progress import progress
from pointlens.utils.validate import check_choice, check_float, check_int

FRAMES = ("object", "viewer")
METHODS = ("encoder-decoder", "clustering", "retrieval", "oracle-nn")
METRICS = ("iou", "chamfer", "fscore@1%", "fscore@2%")
HIGHER_IS_BETTER = {"iou": True, "chamfer": False, "fscore@1%": True, "fscore@2%": True}
CUBE_BOUNDS = (-0.5, 0.5)
THRESHOLDS = (0.01, 0.02)


@dataclass
class StudyConfig:
    """Options of the study (all seeded; see docs/recon.md for the budget behind the defaults).

    Attributes:
        image_size: rendered image side in pixels.
        projection: ``orthographic`` or ``perspective``.
        splat_radius: pixels around its hit pixel that each point also covers in the depth image.
        elevation_range: ``(low, high)`` camera elevation in degrees (azimuth is uniform in ``[0, 360)``).
        up_axis: the data's up axis (``z`` for ShapeParts); azimuth turns about it.
        output_points: points every method outputs: the encoder-decoder's set size; the recognition baselines
            output this many points of their training shape (the ground truth keeps all its points).
        loss_points: ground-truth points (a fixed random subset per shape) used by the training Chamfer loss.
        clusters: K of K-means (clipped to the number of training shapes).
        cluster_resolution: voxels per side of the K-means descriptors.
        embedding_dim: dimension of the MDS embedding of the retrieval baseline.
        voxel_resolution: voxels per side of the IoU metric, the retrieval similarity and the oracle.
        epochs: training epochs of each of the three CNNs.
        batch_size: mini-batch size.
        lr: Adam learning rate.
        width: channels of the first CNN block.
        feature_dim: CNN feature size.
        imbalance: ratio of the largest to the smallest kept share of a class's training shapes (1 = keep
            all); a lopsided training set makes the correlation of per-class score with training-set size
            measurable.
        seed: seeds views, subsets, K-means, network initialisation and shuffling.
        device: torch device of the networks.
    """

    image_size: int = 64
    projection: str = "orthographic"
    splat_radius: int = 1
    elevation_range: tuple = (-20.0, 40.0)
    up_axis: str = "z"
    output_points: int = 2048
    loss_points: int = 512
    clusters: int = 50
    cluster_resolution: int = 16
    embedding_dim: int = 16
    voxel_resolution: int = 32
    epochs: int = 20
    batch_size: int = 64
    lr: float = 1e-3
    width: int = 16
    feature_dim: int = 256
    imbalance: float = 4.0
    seed: int = 0
    device: str = "cpu"

    @classmethod
    def quick(cls, **overrides) -> "StudyConfig":
        """A tiny configuration for tests and smoke runs (seconds): 32×32 images, 2 epochs, K = 4."""
        base = dict(
            image_size=32,
            output_points=128,
            loss_points=128,
            clusters=4,
            cluster_resolution=8,
            embedding_dim=4,
            voxel_resolution=16,
            epochs=2,
            batch_size=16,
            width=8,
            feature_dim=64,
        )
        base.update(overrides)
        return cls(**base)

    def validate(self) -> "StudyConfig":
        """Check every option; returns ``self``. Raises InvalidArgumentError naming the bad option."""
        check_int("image_size", self.image_size, minimum=8, maximum=1024)
        check_choice("projection", self.projection, PROJECTIONS)
        check_choice("up_axis", self.up_axis, UP_AXES)
        check_int("splat_radius", self.splat_radius, minimum=0, maximum=16)
        if len(tuple(self.elevation_range)) != 2:
            raise bad_argument("elevation_range", self.elevation_range, "(low, high) degrees")
        check_int("output_points", self.output_points, minimum=1)
        check_int("loss_points", self.loss_points, minimum=1)
        check_int("clusters", self.clusters, minimum=1)
        check_int("cluster_resolution", self.cluster_resolution, minimum=2, maximum=128)
        check_int("embedding_dim", self.embedding_dim, minimum=1)
        check_int("voxel_resolution", self.voxel_resolution, minimum=2, maximum=256)
        check_int("epochs", self.epochs, minimum=1)
        check_int("batch_size", self.batch_size, minimum=2)
        check_float("lr", self.lr, minimum=0.0, strict_min=True)
        check_int("width", self.width, minimum=1)
        check_int("feature_dim", self.feature_dim, minimum=1)
        check_float("imbalance", self.imbalance, minimum=1.0)
        check_int("seed", self.seed)
        try:
            torch.device(self.device)
        except (RuntimeError, TypeError):
            raise bad_argument("device", self.device, "a torch device such as cpu or cuda") from None
        return self

    def to_dict(self) -> dict:
        """The options as a JSON-safe dict."""
        d = asdict(self)
        d["elevation_range"] = list(self.elevation_range)
        return d


@dataclass
class FrameResult:
    """Per-shape outcome of one frame of the study.

    Attributes:
        frame: ``object`` or ``viewer``.
        scores: ``{method: {metric: (T,) float64}}`` per test shape.
        labels: ``(T,)`` class index of each test shape.
        class_names: ``C`` names.
        train_counts: ``(C,)`` training shapes per class actually used (after ``imbalance``).
        choices: ``{method: (T,) int64}`` training shape returned by each recognition baseline.
        diagnostics: training curves, K-means inertia, MDS explained variance, recognition accuracies.
        config: the :class:`StudyConfig` used.
    """

    frame: str
    scores: dict
    labels: np.ndarray
    class_names: list
    train_counts: np.ndarray
    choices: dict = field(default_factory=dict)
    diagnostics: dict = field(default_factory=dict)
    config: StudyConfig = field(default_factory=StudyConfig)


def load_study_data(
    spec: str, *, num_points: int = 4096, seed: int = 0, limit: int | None = None, test_fraction: float = 0.2
) -> tuple[PointCloudDataset, PointCloudDataset]:
    """Load the training and test splits of a dataset spec (centred, unit-sphere normalised).

    The spec is loaded once (``split=None``) and divided by its ``split`` field; a dataset without one is
    split at random (seeded, ``test_fraction`` of the shapes to test).

    Args:
        spec: a :func:`pointlens.data.load_dataset` spec, e.g. ``shapeparts:n=2000``.
        num_points: points per shape (a seeded random subset when the source has more); the ground truth of
            the study, so denser is better (see docs/recon.md).
        seed: sampling seed.
        limit: keep only the first ``limit`` shapes of each split.
        test_fraction: share of test shapes when the dataset has no split.

    Returns:
        ``(train, test)`` :class:`PointCloudDataset` with ``points (M, N, 3)`` and ``labels (M,)``.
    """
    from pointlens.data import load_dataset

    test_fraction = check_float("test_fraction", test_fraction, minimum=0.0, maximum=1.0, strict_min=True)
    ds = load_dataset(spec, split=None, num_points=num_points, sampling="random", normalize=True, seed=seed)
    if ds.multilabel:
        raise DataError(f"{spec}: multi-label (scene) data; the study needs one class per shape")
    if ds.split is not None:
        is_test = np.asarray(ds.split).astype(str) == "test"
    else:
        rng = np.random.default_rng(int(seed))
        is_test = np.zeros(len(ds), dtype=bool)
        is_test[rng.permutation(len(ds))[: int(round(len(ds) * test_fraction))]] = True
        ds.meta["study_split"] = f"random, seed {seed}, test_fraction {test_fraction}"
    out = []
    for name, sel in (("train", ~is_test), ("test", is_test)):
        idx = np.flatnonzero(sel)[:limit]
        if len(idx) == 0:
            raise DataError(f"{spec}: the {name} split is empty; the study needs train and test shapes")
        out.append(ds.subset(idx))
    return out[0], out[1]


def imbalanced_subset(labels, num_classes: int, imbalance: float, seed: int = 0) -> np.ndarray:
    """Indices of a deliberately lopsided training subset.

    Classes are put in a seeded random order; the ``i``-th keeps the first
    ``max(1, round(n_c * f_i))`` of its shapes with ``f`` linearly spaced from 1 down to ``1 / imbalance``.

    Args:
        labels: ``(M,)`` class indices.
        num_classes: ``C``.
        imbalance: ``>= 1``; 1 keeps everything.
        seed: seeds the class order.

    Returns:
        ``(M',)`` sorted int64 indices into ``labels``.
    """
    labels = np.asarray(labels, dtype=np.int64)
    imbalance = check_float("imbalance", imbalance, minimum=1.0)
    if imbalance == 1.0:
        return np.arange(len(labels))
    order = np.random.default_rng(int(seed)).permutation(num_classes)
    frac = np.linspace(1.0, 1.0 / imbalance, num_classes) if num_classes > 1 else np.ones(1)
    keep = []
    for rank, c in enumerate(order):
        members = np.flatnonzero(labels == c)
        if len(members):
            keep.append(members[: max(1, int(round(len(members) * frac[rank])))])
    return np.sort(np.concatenate(keep)) if keep else np.zeros(0, dtype=np.int64)


def _render_inputs(
    points: torch.Tensor, rot: torch.Tensor, cfg: StudyConfig, chunk: int = 128
) -> torch.Tensor:
    out = []
    for s in range(0, len(points), chunk):
        depth = render_depth(
            points[s : s + chunk],
            rot[s : s + chunk],
            image_size=cfg.image_size,
            projection=cfg.projection,
            splat_radius=cfg.splat_radius,
            camera_distance=2.0 if cfg.projection == "orthographic" else 3.0,
        )
        out.append(network_input(depth))
    return torch.cat(out)


def _targets(points: torch.Tensor, rot: torch.Tensor, frame: str) -> torch.Tensor:
    p = points @ rot.transpose(1, 2) if frame == "viewer" else points
    return 0.5 * p


def _voxels(points: torch.Tensor, resolution: int) -> torch.Tensor:
    return voxelize_points(points, resolution, CUBE_BOUNDS)


def score_predictions(
    pred, gt: torch.Tensor, gt_voxels: torch.Tensor, *, voxel_resolution: int, chunk: int = 128
) -> dict:
    """Score predicted clouds against ground truth in the unit cube.

    Args:
        pred: ``(T, P, 3)`` predictions.
        gt: ``(T, N, 3)`` ground truth.
        gt_voxels: ``(T, R, R, R)`` ground-truth occupancy at ``voxel_resolution``.
        voxel_resolution: ``R``.
        chunk: shapes per metric call (bounds memory).

    Returns:
        ``{metric: (T,) float64}`` for ``iou``, ``chamfer``, ``fscore@1%``, ``fscore@2%``.
    """
    out = {m: [] for m in METRICS}
    for s in range(0, len(gt), chunk):
        p, g = pred[s : s + chunk], gt[s : s + chunk]
        res = compare_shapes(p, g, THRESHOLDS, chamfer_preset="plain")
        out["chamfer"].append(res["chamfer"].double())
        out["fscore@1%"].append(res["fscore"][:, 0].double())
        out["fscore@2%"].append(res["fscore"][:, 1].double())
        out["iou"].append(voxel_iou(_voxels(p, voxel_resolution), gt_voxels[s : s + chunk]).double())
    return {m: torch.cat(v).numpy() for m, v in out.items()}


def run_frame(
    train: PointCloudDataset, test: PointCloudDataset, frame: str, config: StudyConfig | None = None
) -> FrameResult:
    """Run the four methods in one frame and score them on the test shapes.

    Args:
        train: training shapes ``points (M, N, 3)`` (unit-sphere normalised), ``labels (M,)``.
        test: test shapes ``points (T, N', 3)``, ``labels (T,)``, the same ``class_names``.
        frame: ``object`` (canonical targets) or ``viewer`` (targets rotated into the camera frame).
        config: options (default :class:`StudyConfig`).

    Returns:
        :class:`FrameResult` with ``scores[method][metric]`` of shape ``(T,)``.
    """
    check_choice("frame", frame, FRAMES)
    cfg = (config or StudyConfig()).validate()
    for name, ds in (("train", train), ("test", test)):
        if not isinstance(ds, PointCloudDataset) or len(ds) == 0:
            raise bad_argument(
                name,
                type(ds).__name__ if not isinstance(ds, PointCloudDataset) else "0 shapes",
                "a non-empty PointCloudDataset",
            )
        if ds.multilabel:
            raise bad_argument(name, "multi-label data", "one class index per shape")
    if list(train.class_names) != list(test.class_names):
        raise bad_argument("test.class_names", test.class_names[:5], "the same class names as train")
    dev = torch.device(cfg.device)
    seed = int(cfg.seed)
    nc = len(train.class_names)
    keep = imbalanced_subset(train.labels, nc, cfg.imbalance, seed)
    tr_labels = np.asarray(train.labels, dtype=np.int64)[keep]
    tr_points = torch.from_numpy(train.points[keep])
    te_points = torch.from_numpy(test.points)
    m, t = len(tr_points), len(te_points)

    # 1. renders (the same views in both frames) and targets
    tr_views = random_views(m, seed=seed * 2 + 1, elevation_range=tuple(cfg.elevation_range))
    te_views = random_views(t, seed=seed * 2 + 2, elevation_range=tuple(cfg.elevation_range))
    tr_rot = camera_rotation(*tr_views, up=cfg.up_axis)
    te_rot = camera_rotation(*te_views, up=cfg.up_axis)
    tr_img = _render_inputs(tr_points, tr_rot, cfg).to(dev)
    te_img = _render_inputs(te_points, te_rot, cfg).to(dev)
    tr_tgt = _targets(tr_points, tr_rot, frame)
    te_tgt = _targets(te_points, te_rot, frame)
    n_out = min(cfg.output_points, tr_tgt.shape[1])
    tr_out = tr_tgt[:, :n_out]  # the loader sampled points at random: the first n_out are a random subset
    tr_vox = _voxels(tr_tgt, cfg.voxel_resolution)
    tr_out_vox = _voxels(tr_out, cfg.voxel_resolution)
    te_vox = _voxels(te_tgt, cfg.voxel_resolution)
    diag: dict = {"n_train": m, "n_test": t}
    bar = progress(total=4, desc=f"recon {frame}")

    def encoder():
        return ImageEncoder(2, cfg.image_size, cfg.width, cfg.feature_dim)

    train_opts = dict(epochs=cfg.epochs, batch_size=cfg.batch_size, lr=cfg.lr, seed=seed)

    # 2. encoder-decoder
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed + 11)
    n_loss = min(cfg.loss_points, tr_tgt.shape[1])
    sub = torch.argsort(torch.rand(m, tr_tgt.shape[1], generator=g), dim=1)[:, :n_loss]
    loss_tgt = torch.gather(tr_tgt, 1, sub.unsqueeze(-1).expand(-1, -1, 3)).to(dev)
    net = EncoderDecoder(encoder(), PointDecoder(cfg.feature_dim, n_out)).to(dev)
    diag["decoder_loss"] = fit(
        net,
        tr_img,
        loss_tgt,
        lambda p, q: chamfer_distance(p, q, preset="pytorch3d", backend="torch"),
        desc="encoder-decoder",
        **train_opts,
    )
    preds = {"encoder-decoder": predict(net, te_img).cpu()}
    bar.update(1)

    # 3. clustering
    desc = _voxels(tr_tgt, cfg.cluster_resolution).reshape(m, -1).numpy().astype(np.float64)
    k = min(cfg.clusters, m)
    km = baselines.kmeans(desc, k, seed=seed)
    medoid = baselines.cluster_medoids(desc, km.labels, k)
    torch.manual_seed(seed + 1)
    clf = ImageHead(encoder(), k).to(dev)
    diag["cluster_loss"] = fit(
        clf, tr_img, torch.from_numpy(km.labels).to(dev), F.cross_entropy, desc="clustering", **train_opts
    )
    cluster_pred = predict(clf, te_img).argmax(1).cpu().numpy()
    te_desc = _voxels(te_tgt, cfg.cluster_resolution).reshape(t, -1).numpy().astype(np.float64)
    cluster_true = baselines.assign(te_desc, km.centers)
    choices = {"clustering": medoid[cluster_pred]}
    diag["kmeans"] = {
        "k": k,
        "inertia": km.inertia,
        "iterations": len(km.history),
        "test_cluster_accuracy": float((cluster_pred == cluster_true).mean()),
    }
    bar.update(1)

    # 4. retrieval: voxel-IoU distance -> classical MDS -> CNN regression -> nearest training shape
    dist = 1.0 - baselines.pairwise_voxel_iou(tr_vox).double().numpy()
    dist = (dist + dist.T) / 2
    np.fill_diagonal(dist, 0.0)
    dim = min(cfg.embedding_dim, m)
    mds = baselines.classical_mds(dist, dim)
    scale = float(mds.embedding.std()) or 1.0
    emb = torch.from_numpy(mds.embedding / scale).float()
    torch.manual_seed(seed + 2)
    reg = ImageHead(encoder(), dim).to(dev)
    diag["retrieval_loss"] = fit(reg, tr_img, emb.to(dev), F.mse_loss, desc="retrieval", **train_opts)
    choices["retrieval"] = baselines.nearest_rows(
        predict(reg, te_img).cpu().double().numpy(), emb.double().numpy()
    )
    diag["mds"] = {"dim": dim, "explained": mds.explained}
    bar.update(1)

    # 5. oracle nearest neighbour: the best voxel IoU of the output (as scored below) to the ground truth
    choices["oracle-nn"], _ = baselines.oracle_nearest(te_vox, tr_out_vox)
    for name in ("clustering", "retrieval", "oracle-nn"):
        preds[name] = tr_out[torch.from_numpy(choices[name])]
        diag[f"{name}_same_class"] = float((tr_labels[choices[name]] == np.asarray(test.labels)).mean())
    scores = {
        name: score_predictions(preds[name], te_tgt, te_vox, voxel_resolution=cfg.voxel_resolution)
        for name in METHODS
    }
    bar.update(1)
    bar.close()
    return FrameResult(
        frame=frame,
        scores=scores,
        labels=np.asarray(test.labels, dtype=np.int64),
        class_names=list(train.class_names),
        train_counts=np.bincount(tr_labels, minlength=nc),
        choices={k_: np.asarray(v, dtype=np.int64) for k_, v in choices.items()},
        diagnostics=diag,
        config=replace(cfg),
    )


def summarize(result: FrameResult) -> dict:
    """Overall and per-class means, KS tests between methods, Spearman correlation with training-set size.

    KS tests compare, for each metric, the distributions of the PER-CLASS mean scores of two methods (classes
    with test shapes), as in the paper; Spearman correlates each method's per-class mean score with the number
    of training shapes of the class (``nan`` when the sizes are all equal).

    Args:
        result: a :class:`FrameResult`.

    Returns:
        a JSON-safe dict: ``frame``, ``n_train``, ``n_test``, ``overall[method][metric]`` (plus
        ``iou_median``),
        ``per_class[class]`` (``n_train``, ``n_test``, ``[method][metric]``), ``ks_tests[metric]`` (list of
        pairs), ``spearman[method][metric]`` (``rho``, ``pvalue``), ``finding`` (the paper's claims checked on
        these numbers) and ``diagnostics``.
    """
    labels = result.labels
    present = [c for c in range(len(result.class_names)) if (labels == c).any()]
    overall = {}
    for meth in METHODS:
        s = result.scores[meth]
        overall[meth] = {metric: float(np.mean(s[metric])) for metric in METRICS}
        overall[meth]["iou_median"] = float(np.median(s["iou"]))
    per_class = {}
    class_means = {meth: {metric: [] for metric in METRICS} for meth in METHODS}
    for c in present:
        sel = labels == c
        row = {"n_train": int(result.train_counts[c]), "n_test": int(sel.sum())}
        for meth in METHODS:
            row[meth] = {metric: float(np.mean(result.scores[meth][metric][sel])) for metric in METRICS}
            for metric in METRICS:
                class_means[meth][metric].append(row[meth][metric])
        per_class[result.class_names[c]] = row
    ks = {
        metric: stats.pairwise_ks({meth: class_means[meth][metric] for meth in METHODS}) for metric in METRICS
    }
    sizes = [result.train_counts[c] for c in present]
    spear = {}
    for meth in METHODS:
        spear[meth] = {}
        for metric in METRICS:
            r = stats.spearman_test(sizes, class_means[meth][metric])
            spear[meth][metric] = {"rho": r.statistic, "pvalue": r.pvalue}
    o = overall
    finding = {
        "retrieval_ge_decoder_fscore@1%": o["retrieval"]["fscore@1%"] >= o["encoder-decoder"]["fscore@1%"],
        "retrieval_ge_decoder_iou": o["retrieval"]["iou"] >= o["encoder-decoder"]["iou"],
        "oracle_best_fscore@1%": all(o["oracle-nn"]["fscore@1%"] >= o[m]["fscore@1%"] for m in METHODS),
        "oracle_best_iou": all(o["oracle-nn"]["iou"] >= o[m]["iou"] for m in METHODS),
    }
    finding["agrees_with_paper"] = all(finding.values())
    return {
        "frame": result.frame,
        "n_train": int(result.diagnostics.get("n_train", result.train_counts.sum())),
        "n_test": int(len(labels)),
        "overall": overall,
        "per_class": per_class,
        "ks_tests": ks,
        "spearman": spear,
        "finding": finding,
        "diagnostics": result.diagnostics,
    }


def run_study(
    train: PointCloudDataset, test: PointCloudDataset, frames=FRAMES, config: StudyConfig | None = None
) -> dict:
    """Run :func:`run_frame` for each frame in order (default object, then viewer).

    Args:
        train: training shapes.
        test: test shapes.
        frames: iterable of ``object`` / ``viewer``.
        config: options.

    Returns:
        ``{frame: FrameResult}`` in the order run.
    """
    frames = [frames] if isinstance(frames, str) else list(frames)
    if not frames:
        raise bad_argument("frames", frames, "one or more of object, viewer")
    for f in frames:
        check_choice("frames", f, FRAMES)
    return {f: run_frame(train, test, f, config) for f in frames}
