"""The supporting plane (table, conveyor) under the part: RANSAC, vectorised (ROS-free).

A plane is (a, b, c, d) with a*x + b*y + c*z + d = 0, (a, b, c) a unit normal, in the camera
frame (metres). The sign is chosen so that d > 0: the camera (the origin) is on the positive
side, so ``height = a*x + b*y + c*z + d`` is the height above the plane towards the camera.
"""

from __future__ import annotations

from typing import Tuple

import numpy as np


def orient_towards_camera(plane: np.ndarray) -> np.ndarray:
    """The same plane with the normal's sign chosen so that the camera has positive height."""
    plane = np.asarray(plane, np.float64)
    return -plane if plane[3] < 0 else plane


def plane_through(points: np.ndarray) -> np.ndarray:
    """Least-squares plane through N x 3 points (smallest principal axis), oriented."""
    centre = points.mean(axis=0)
    _, _, vt = np.linalg.svd(points - centre, full_matrices=False)
    normal = vt[-1]
    return orient_towards_camera(np.r_[normal, -normal @ centre])


def fit_plane_ransac(points: np.ndarray, distance_m: float, iterations: int = 100,
                     seed: int = 0) -> Tuple[np.ndarray, np.ndarray]:
    """The plane with the most points within ``distance_m`` (RANSAC over random triples, all
    hypotheses scored in one matrix product), refined by least squares on its inliers.

    Returns (plane (4,), inlier mask (N,)). Raises ValueError with fewer than 3 points.
    Deterministic for a given seed, so the same frame always gives the same verdict.
    """
    points = np.asarray(points, np.float64)
    if points.ndim != 2 or points.shape[1] != 3 or len(points) < 3:
        raise ValueError(f"plane fitting needs N x 3 points with N >= 3, got {points.shape}")
    rng = np.random.default_rng(seed)
    triples = points[rng.integers(0, len(points), size=(iterations, 3))]
    normals = np.cross(triples[:, 1] - triples[:, 0], triples[:, 2] - triples[:, 0])
    lengths = np.linalg.norm(normals, axis=1)
    usable = lengths > 1e-12                        # collinear triples define no plane
    if not usable.any():
        raise ValueError("all sampled point triples are collinear: no plane")
    normals = normals[usable] / lengths[usable, None]
    offsets = -np.einsum("ij,ij->i", normals, triples[usable, 0])
    distances = np.abs(points @ normals.T + offsets)  # N x hypotheses
    best = int(np.argmax((distances < distance_m).sum(axis=0)))
    inliers = distances[:, best] < distance_m
    plane = plane_through(points[inliers])
    # Re-select inliers against the refined plane: the refit moves it by up to distance_m.
    return plane, plane_inliers(points, plane, distance_m)


def plane_inliers(points: np.ndarray, plane: np.ndarray, distance_m: float) -> np.ndarray:
    """N bools: which points lie within ``distance_m`` of the plane."""
    return np.abs(points @ plane[:3] + plane[3]) < distance_m


def plane_basis(plane: np.ndarray) -> np.ndarray:
    """3 x 3 rotation whose columns are two in-plane unit axes and the normal (right-handed)."""
    normal = np.asarray(plane[:3], np.float64)
    helper = np.array([1.0, 0.0, 0.0]) if abs(normal[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    e1 = np.cross(helper, normal)
    e1 /= np.linalg.norm(e1)
    e2 = np.cross(normal, e1)
    return np.stack([e1, e2, normal], axis=1)
