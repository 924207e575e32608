"""An RGB-D folder dataset whose depth images are 8-bit, as some tools write them."""

import numpy as np
from PIL import Image


def eight_bit_rgbd_dataset(root, count=8):
    """RGB-D folders whose depth is 8-bit: normalised, 0 = background, a raised part."""
    for split, label, n in [("train", "good", count), ("test", "good", 2), ("test", "dent", 2)]:
        for kind in ("rgb", "depth"):
            (root / split / label / kind).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            Image.fromarray(np.full((40, 40, 3), 120 + i, np.uint8)).save(
                root / split / label / "rgb" / f"{i}.png")
            depth = np.full((40, 40), 100, np.uint8)
            depth[10:30, 10:30] = 140
            if label == "dent":
                depth[15:20, 15:20] = 120
            Image.fromarray(depth).save(root / split / label / "depth" / f"{i}.png")
    return root
