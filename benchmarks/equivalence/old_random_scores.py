"""The refactored drop machinery fed the OLD random scores (generator seeded with (seed, cloud index)) must give
the OLD random rows exactly; the new default random baseline is RandomAttribution (seeded by geometry)."""
import json
import sys

import numpy as np
import torch

from pointlens.data import load_dataset
from pointlens.models import load_checkpoint
from pointlens.perturb.dropping import drop_curve

SH = "../shared/data"
model = load_checkpoint(f"{SH}/learning3d_pointnet_cls_modelnet40_best_model.t7", format="learning3d").model
ds = load_dataset(f"npz:{SH}/modelnet40_normal_resampled_subset_2048.npz", split="test", num_points=1024)
pts, lab = torch.from_numpy(ds.points), torch.from_numpy(ds.labels)
n = pts.shape[1]
old = np.stack([np.random.default_rng([0, i]).random(n) for i in range(len(pts))]).astype(np.float32)
before = json.load(open(sys.argv[1]))
for mode in ("high", "low"):
    r = drop_curve(model, pts, lab, torch.from_numpy(old), budgets=(0, 25, 50, 100, 150, 200), per_step=10,
                   mode=mode, keep_clouds=False)
    got = {str(b): float(a) for b, a in r.accuracy.items()}
    print(f"random-{mode}: old scores through the new code", "IDENTICAL" if got == before[f"random-{mode}"] else
          f"DIFFERENT {got}")
