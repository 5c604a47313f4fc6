"""pointlens.recon: what do single-view reconstruction networks learn? (Tatarchenko et al., CVPR 2019).

Renders point clouds to single depth views, then compares an encoder-decoder with recognition baselines
(clustering, retrieval) and the oracle nearest neighbour in object- and viewer-centred frames.
See docs/recon.md.
"""

from pointlens.recon.baselines import (
    KMeansResult,
    MDSResult,
    assign,
    classical_mds,
    cluster_medoids,
    kmeans,
    nearest_rows,
    oracle_nearest,
    pairwise_voxel_iou,
)
from pointlens.recon.models import EncoderDecoder, ImageEncoder, ImageHead, PointDecoder, fit, predict
from pointlens.recon.render import (
    Rendering,
    Views,
    camera_rotation,
    network_input,
    random_views,
    render_depth,
    render_views,
    silhouette,
    to_viewer_frame,
)
from pointlens.recon.report import write_study
from pointlens.recon.study import (
    FRAMES,
    METHODS,
    METRICS,
    FrameResult,
    StudyConfig,
    imbalanced_subset,
    load_study_data,
    run_frame,
    run_study,
    score_predictions,
    summarize,
)
from pointlens.stats import StatResult, ks_test, pairwise_ks, spearman_test

__all__ = [
    "FRAMES",
    "METHODS",
    "METRICS",
    "EncoderDecoder",
    "FrameResult",
    "ImageEncoder",
    "ImageHead",
    "KMeansResult",
    "MDSResult",
    "PointDecoder",
    "Rendering",
    "StatResult",
    "StudyConfig",
    "Views",
    "assign",
    "camera_rotation",
    "classical_mds",
    "cluster_medoids",
    "fit",
    "imbalanced_subset",
    "kmeans",
    "ks_test",
    "load_study_data",
    "nearest_rows",
    "network_input",
    "oracle_nearest",
    "pairwise_ks",
    "pairwise_voxel_iou",
    "predict",
    "random_views",
    "render_depth",
    "render_views",
    "run_frame",
    "run_study",
    "score_predictions",
    "silhouette",
    "spearman_test",
    "summarize",
    "to_viewer_frame",
    "write_study",
]


def __getattr__(name: str):
    if name == "spearman":   # renamed in 0.2: pointlens.stats.spearman is the batched correlation
        import warnings

        warnings.warn("pointlens.recon.spearman is now pointlens.stats.spearman_test; the old name goes in the next "
                      "release", DeprecationWarning, stacklevel=2)
        return spearman_test
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
