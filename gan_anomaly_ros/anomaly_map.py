"""Anomaly maps for people and robots: colour heatmaps, overlays and the strongest region."""

from __future__ import annotations

from typing import Optional, Tuple

import numpy as np
from PIL import Image
from scipy import ndimage

Box = Tuple[int, int, int, int]  # x, y, width, height

# Anchor colours of a perceptually ordered "turbo-like" map: dark blue -> cyan -> yellow -> red.
_ANCHORS = np.array([[48, 18, 59], [50, 130, 240], [27, 229, 181], [164, 252, 60],
                     [251, 185, 56], [228, 70, 10], [122, 4, 3]], np.float32)
_LUT = np.stack([np.interp(np.linspace(0, 1, 256), np.linspace(0, 1, len(_ANCHORS)),
                           _ANCHORS[:, c]) for c in range(3)], axis=1).astype(np.uint8)


def display_scale(anomaly_map: np.ndarray, map_threshold: float) -> np.ndarray:
    """Map values -> [0, 1] with the calibrated pixel threshold at 0.5 (same rule as scores)."""
    return np.clip(anomaly_map / (2.0 * map_threshold), 0.0, 1.0)


def colorize(unit_map: np.ndarray) -> np.ndarray:
    """[0, 1] map -> HxWx3 uint8 RGB."""
    return _LUT[np.clip(unit_map * 255.0, 0, 255).astype(np.uint8)]


def strongest_region(anomaly_map: np.ndarray, map_threshold: float) -> Optional[Box]:
    """Bounding box (map pixels) of the connected above-threshold region holding the maximum."""
    above = anomaly_map > map_threshold
    if not above.any():
        return None
    labels, _ = ndimage.label(above)
    peak = np.unravel_index(np.argmax(np.where(above, anomaly_map, -np.inf)), anomaly_map.shape)
    rows, cols = np.nonzero(labels == labels[peak])
    return (int(cols.min()), int(rows.min()), int(cols.max() - cols.min() + 1),
            int(rows.max() - rows.min() + 1))


def map_box_to_image(box: Box, map_size: int, crop: Box) -> Box:
    """A box in model-input pixels -> the same region in the source image's pixels."""
    sx, sy = crop[2] / map_size, crop[3] / map_size
    x0, y0 = crop[0] + box[0] * sx, crop[1] + box[1] * sy
    return (int(np.floor(x0)), int(np.floor(y0)), int(np.ceil(box[2] * sx)), int(np.ceil(box[3] * sy)))


def points_to_crop_map(values: np.ndarray, u: np.ndarray, v: np.ndarray, crop: Box,
                       size: int) -> np.ndarray:
    """A map that is not in image coordinates (a height model's, in the part's own frame), put
    on the image crop through the part's points: ``values`` per point, at pixel (u, v). The
    size x size map over ``crop`` holds each cell's largest value, cells without a point take
    their neighbours' (the cloud is a subsample of the pixels) and the rest the lowest value,
    so the picture stays where the part is."""
    values = np.asarray(values, np.float64)
    if values.size == 0:
        return np.zeros((size, size), np.float32)
    x0, y0, width, height = crop
    col = np.floor((np.asarray(u) - x0) * size / width).astype(np.int64)
    row = np.floor((np.asarray(v) - y0) * size / height).astype(np.int64)
    inside = (col >= 0) & (col < size) & (row >= 0) & (row < size)
    cells = np.full(size * size, -np.inf)
    np.maximum.at(cells, row[inside] * size + col[inside], values[inside])
    cells = cells.reshape(size, size)
    cells = np.where(np.isfinite(cells), cells, ndimage.grey_dilation(cells, size=3))
    return np.where(np.isfinite(cells), cells, values.min()).astype(np.float32)


def heatmap_image(unit_map: np.ndarray, crop: Box, image_shape) -> np.ndarray:
    """Full-frame rgb8 heatmap: the map resized into the crop region, black elsewhere."""
    height, width = image_shape[:2]
    x, y, w, h = crop
    resized = np.asarray(Image.fromarray(unit_map.astype(np.float32)).resize((w, h), Image.BILINEAR))
    canvas = np.zeros((height, width, 3), np.uint8)
    canvas[y:y + h, x:x + w] = colorize(resized)
    return canvas, (x, y, w, h), resized


def overlay_image(rgb: np.ndarray, unit_map: np.ndarray, crop: Box, roi: Optional[Box],
                  alpha: float = 0.5) -> Tuple[np.ndarray, np.ndarray]:
    """(heatmap, overlay) rgb8 images of the frame's size; the ROI is drawn as a white box."""
    heatmap, (x, y, w, h), resized = heatmap_image(unit_map, crop, rgb.shape)
    overlay = rgb.copy()
    # Blend only where the map says something, so the part stays readable elsewhere.
    weight = (alpha * np.clip(resized * 2.0 - 0.3, 0.0, 1.0))[..., None]
    region = overlay[y:y + h, x:x + w].astype(np.float32)
    overlay[y:y + h, x:x + w] = (region * (1 - weight) + heatmap[y:y + h, x:x + w] * weight
                                 ).astype(np.uint8)
    if roi is not None:
        draw_box(overlay, roi, (255, 255, 255))
    return heatmap, overlay


def draw_box(image: np.ndarray, box: Box, colour, thickness: int = 2) -> None:
    height, width = image.shape[:2]
    x0, y0 = max(0, box[0]), max(0, box[1])
    x1, y1 = min(width, box[0] + box[2]), min(height, box[1] + box[3])
    if x1 <= x0 or y1 <= y0:
        return
    image[y0:y0 + thickness, x0:x1] = colour
    image[max(y0, y1 - thickness):y1, x0:x1] = colour
    image[y0:y1, x0:x0 + thickness] = colour
    image[y0:y1, max(x0, x1 - thickness):x1] = colour
