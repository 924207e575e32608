"""Synthetic RGB-D inspection scenes: a machined flange on a table, seen from above by a
RealSense-like camera (ROS-free, numpy only).

This is the project's built-in data source: the demo, the tests and the replay camera use it,
and :func:`write_dataset` turns it into an MVTec AD style RGB-D folder dataset, so nothing has
to be downloaded.

The scene
---------
The camera looks straight down (optical axis about 0.6 degrees off the table normal) at a wooden
table ``TABLE_DISTANCE_MM`` away. On the table lies a turned steel flange: 108 mm across, 20 mm
tall, chamfered edge, a centre bore, six bolt holes and a shallow turned groove, with concentric
machining rings and an anisotropic (brushed) highlight. Per seed the part moves by a few mm,
rotates by up to 15 degrees, its tint and the lights vary by about 10 % and the sensor noise is
redrawn, so no two good frames are the same. With the default placement the part's image always
lies inside the centred square crop of side ``0.6 * min(H, W)`` for D435-like intrinsics (the
crop the model uses).

Rendering: the scene is a height field over the table; every pixel's ray is intersected with it
by fixed-point iteration z <- table_depth - height(X(z), Y(z)), switching to bisection where the
ray meets a (near-)vertical wall. Shading is Lambert (key light + ring light) + ambient +
anisotropic specular from normals of the rendered depth, with ambient occlusion in cavities and
a soft cast shadow on the table. Depth gets RealSense-like noise (sigma ~ 1 mm * (z / 0.5 m)^2),
1 mm quantisation and zeros (invalid) in the stereo-occlusion band left of depth edges, the way
a D435 aligned to colour shows them.

Defects lie on the flat top face of the part, sized to stay visible when the centre crop is
scaled to 64x64: ``dent`` (smooth 1.5-4 mm depression), ``bump`` (raised), ``hole`` (6-12 mm deep
irregular pit), ``scratch`` (0.35-0.8 mm deep groove 3.5-5.5 px wide and 60-120 px long, darker
than the metal or, one time in three, brighter) and ``stain`` (oil or rust, colour only, no depth
change). Sizes are physical (mm on
the part; the pixel figures are for the D435 640x480 default). The mask marks exactly the pixels
the defect changes: where its height change exceeds 0.02 mm (grown by one pixel, since shading
uses neighbouring depths) or its albedo change / stain opacity exceeds 3 %; weaker contributions
are zeroed.

Options for 3D perception work (all off by default; the defaults render bit-identically to before)
---------------------------------------------------------------------------------------------------
``placement="random"`` puts the part anywhere in the workspace (the table region where the part,
a 10 mm margin and its shadow stay in the image) with a uniform yaw in [0, 360); it is drawn
from its own RNG stream, so lights and sensor noise stay those of the seed. The part is then no
longer inside the centre crop.

Geometry-only defects (:data:`GEOMETRY_DEFECT_TYPES`) change depth, never colour: ``geo_dent``
and ``geo_bump`` (shapes as ``dent``/``bump``) and ``missing_chunk`` (a circular segment 10-20 mm
deep broken off the outer rim, the table shows through in depth). Colour is shaded from the
defect-free surface, so it is bit-identical to the good frame of the seed; the mask marks the
pixels whose depth the defect changes by more than 0.02 mm, grown by one pixel.

``depth_artifacts=True`` adds D435-like failures: dropouts on dark surfaces (probability
``0.5 * clip((60 - Y) / 60, 0, 1)`` for 8-bit luma Y), small hole blobs and flying pixels (depth
interpolated between the two sides, ~30 % of edge pixels) at depth edges over 10 mm.

Every frame's ``info`` carries the ground truth: ``part_center_camera_m`` (the part axis point
halfway between the table and the top face, camera optical frame, metres), ``part_yaw_deg``,
``part_height_m``, ``part_radius_m`` and ``table_plane`` (a, b, c, d): a*x + b*y + c*z + d = 0
in metres with the unit normal towards the camera (c < 0). The yaw is the angle from the camera's
x axis towards its y axis of the part's x axis (through a bolt hole; the bolt pattern repeats
every 60 degrees), i.e. right-handed about the table normal pointing into the table. The part is
extruded along the camera's z axis (0.6 degrees off the table normal), so heights above the plane
are exact to about 0.01 mm.
"""

from __future__ import annotations

import json
import math
import zlib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Optional, Sequence

import numpy as np

from ..perception.geometry import D435_COLOR_640X480, CameraIntrinsics
from ..progress import track

__all__ = [
    "DEFECT_TYPES",
    "GEOMETRY_DEFECT_TYPES",
    "ALL_DEFECT_TYPES",
    "PLACEMENTS",
    "GOOD_LABEL",
    "SyntheticFrame",
    "render_scene",
    "crop_region",
    "split_seeds",
    "write_dataset",
    "TABLE_DISTANCE_MM",
]

DEFECT_TYPES = ("dent", "bump", "hole", "scratch", "stain")
# Depth-only defects: colour is that of the good part (the benchmarks keep using DEFECT_TYPES).
GEOMETRY_DEFECT_TYPES = ("geo_dent", "geo_bump", "missing_chunk")
ALL_DEFECT_TYPES = DEFECT_TYPES + GEOMETRY_DEFECT_TYPES
PLACEMENTS = ("centered", "random")
GOOD_LABEL = "good"

# --- scene constants (millimetres) -------------------------------------------------------------
TABLE_DISTANCE_MM = 515.0          # table depth on the principal ray
TABLE_SLOPE = (0.009, -0.0065)     # dz/dX, dz/dY of the table plane (camera ~0.6 deg off square)
PART_R = 54.0                      # flange outer radius
PART_H = 20.0                      # flange height
CHAMFER = 1.3                      # outer top chamfer (45 degrees)
BORE_R = 9.0                       # centre bore radius (through)
BORE_CHAMFER = 1.0
GROOVE_R = 35.0                    # turned decorative groove: radius, half width, depth
GROOVE_HW = 0.9
GROOVE_D = 0.6
BOLT_PCD_R = 45.5                  # bolt circle radius, six through holes
BOLT_R = 3.0
BOLT_CHAMFER = 0.5
N_BOLTS = 6
MAX_DEFECT_RISE = 4.0              # highest a bump rises above the top face
BASELINE_MM = 50.0                 # D435 stereo baseline (for the occlusion band)

_N_ITERS = 16                      # ray-cast iterations (fixed point, then bisection)
_GAMMA = 1.0 / 2.2
_REF_MM_PER_PX = (TABLE_DISTANCE_MM - PART_H) / D435_COLOR_640X480.fx   # ~0.80 mm on the top
_COLOR_NOISE = 1.6                 # colour noise sigma, 8-bit levels
_MASK_DH_MM = 0.02                 # mask: height change above this (mm) ...
_MASK_DALB = 0.03                  # ... or relative albedo change / stain opacity above this
PLACEMENT_MARGIN_MM = 10.0         # random placement: free table around the part's rim ...
_MAX_SHADOW_MM = 12.0              # ... plus the longest key-light shadow (PART_H * 0.57 < 12)
# Extra RNG streams (seeded with the frame seed) so the new options leave the scene stream alone.
_PLACEMENT_STREAM = 0x91ACE
_ARTIFACT_STREAM = 0xDA27F
_EDGE_MM = 10.0                    # depth_artifacts: neighbour depth step that makes an edge
_FLYING_FRACTION = 0.3
_DARK_LUMA = 60.0                  # dropout probability 0.5 * clip((60 - Y) / 60, 0, 1)
_DARK_DROP_MAX = 0.5


@dataclass
class SyntheticFrame:
    """One rendered RGB-D frame.

    color: HxWx3 uint8 RGB. depth_mm: HxW uint16, millimetres along the optical axis, 0 = no
    data (RealSense convention). mask: HxW uint8, 255 where the defect changed the surface, all
    zero for good frames. label: ``"good"`` or one of :data:`ALL_DEFECT_TYPES`. info: the part's
    pose (``part_center_mm``: axis on the table, camera X/Y in mm; ``part_rotation_deg``), the
    defect's centre, and the ground truth described in the module docstring
    (``part_center_camera_m``, ``part_yaw_deg``, ``part_height_m``, ``part_radius_m``,
    ``table_plane``).
    """

    color: np.ndarray
    depth_mm: np.ndarray
    mask: np.ndarray
    label: str
    intrinsics: CameraIntrinsics
    seed: int
    info: dict = field(default_factory=dict, repr=False)

    @property
    def depth_m(self) -> np.ndarray:
        """Depth in metres (float32), 0 where invalid."""
        return self.depth_mm.astype(np.float32) * np.float32(0.001)


def crop_region(width: int, height: int, fraction: float = 0.6) -> tuple[int, int, int, int]:
    """(x, y, w, h) of the centred square crop of side ``fraction * min(width, height)``, the
    same box ``preprocessing.crop_box_for`` uses for ``center_crop``."""
    side = max(1, int(round(min(width, height) * fraction)))
    return ((width - side) // 2, (height - side) // 2, side, side)


# --- small helpers -------------------------------------------------------------------------------

def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def _srgb_to_linear(rgb255: Sequence[float]) -> np.ndarray:
    return (np.asarray(rgb255, dtype=np.float32) / 255.0) ** 2.2


def _value_noise(rng: np.random.Generator, shape: tuple[int, int],
                 cells: tuple[int, int]) -> np.ndarray:
    """Smooth value noise with unit std: a random grid of ``cells`` interpolated (separable,
    smoothstep weights) up to ``shape``."""
    grid = rng.standard_normal((cells[0] + 1, cells[1] + 1))

    def axis_weights(n: int, m: int):
        t = np.linspace(0.0, m - 1e-6, n)
        i = np.floor(t).astype(np.intp)
        f = t - i
        return i, f * f * (3.0 - 2.0 * f)

    ci, cw = axis_weights(shape[1], cells[1])
    rows = grid[:, ci] * (1.0 - cw) + grid[:, ci + 1] * cw          # (cells0 + 1, W)
    ri, rw = axis_weights(shape[0], cells[0])
    out = rows[ri] * (1.0 - rw)[:, None] + rows[ri + 1] * rw[:, None]
    return ((out - out.mean()) / (out.std() + 1e-9)).astype(np.float32)


@lru_cache(maxsize=2)
def _noise_bank(min_size: int) -> np.ndarray:
    """Fixed bank of standard normal float32 samples (at least ``min_size``, power of two)."""
    size = 1 << max(20, int(min_size - 1).bit_length())
    bank = np.random.default_rng(0x0B5E55ED).standard_normal(size, dtype=np.float32)
    bank.setflags(write=False)
    return bank


@dataclass(frozen=True)
class _Static:
    """Per-camera data that does not change between frames (cached)."""

    xn: np.ndarray          # (W,) normalised image x = (u - cx) / fx
    yn: np.ndarray          # (H,)
    table_z: np.ndarray     # (H, W) table depth, mm
    table_alb: np.ndarray   # (H, W, 3) linear albedo of the table
    vignette: np.ndarray    # (H, W)
    table_base: np.ndarray  # (H, W, 3) 255 * (albedo * vignette) ** (1 / 2.2)
    table_n: np.ndarray     # (3,) table normal (towards the camera)


@lru_cache(maxsize=4)
def _static(intr: CameraIntrinsics) -> _Static:
    H, W = intr.height, intr.width
    xn = ((np.arange(W, dtype=np.float64) - intr.cx) / intr.fx).astype(np.float32)
    yn = ((np.arange(H, dtype=np.float64) - intr.cy) / intr.fy).astype(np.float32)
    sx, sy = TABLE_SLOPE
    table_z = (TABLE_DISTANCE_MM / (1.0 - sx * xn[None, :] - sy * yn[:, None])).astype(np.float32)

    # Wood texture in table millimetres, fixed for the cell (the table does not move).
    rng = np.random.default_rng(20240611)
    X = xn[None, :] * table_z
    Y = yn[:, None] * table_z
    mm_per_px = TABLE_DISTANCE_MM / intr.fx
    ext_x = W * mm_per_px
    ext_y = H * mm_per_px
    warp = _value_noise(rng, (H, W), (max(2, int(ext_y / 45)), max(2, int(ext_x / 45))))
    fibre = _value_noise(rng, (H, W), (max(2, int(ext_y / 0.9)), max(2, int(ext_x / 25))))
    blotch = _value_noise(rng, (H, W), (max(2, int(ext_y / 70)), max(2, int(ext_x / 70))))
    fibre2 = _value_noise(rng, (H, W), (max(2, int(ext_y / 3.0)), max(2, int(ext_x / 60))))
    ang = math.radians(4.0)
    along = -X * math.sin(ang) + Y * math.cos(ang)
    phase = 2.0 * np.pi * (along / 5.3 + 0.22 * warp)
    rings = 0.5 + 0.5 * np.sin(phase)
    late = rings ** 10                                       # narrow latewood lines
    strength = 0.5 + 0.5 * np.clip(0.5 + 0.5 * fibre2, 0.0, 1.0)
    fine = rng.standard_normal((H, W)).astype(np.float32)
    shade = (1.0 - 0.10 * late * strength - 0.02 * rings + 0.03 * fibre + 0.018 * blotch
             + 0.015 * fine)
    base = _srgb_to_linear((206, 178, 140))
    tint = np.stack([np.ones_like(blotch), 1.0 - 0.006 * blotch, 1.0 - 0.015 * blotch], axis=-1)
    table_alb = (base[None, None, :] * shade[..., None] * tint).astype(np.float32)

    r2 = (xn[None, :] ** 2 + yn[:, None] ** 2).astype(np.float32)
    vignette = (1.0 / (1.0 + 0.22 * r2) ** 2).astype(np.float32)
    table_base = (255.0 * (table_alb * vignette[..., None]) ** _GAMMA).astype(np.float32)
    n = np.array([sx, sy, -1.0], dtype=np.float32)
    n /= np.linalg.norm(n)
    for a in (xn, yn, table_z, table_alb, vignette, table_base, n):
        a.setflags(write=False)
    return _Static(xn, yn, table_z, table_alb, vignette, table_base, n)


# --- scene and defect parameters -----------------------------------------------------------------

@dataclass
class _Scene:
    x0: float            # part centre on the table (camera X, Y at the table), mm
    y0: float
    theta: float         # part rotation, rad
    cos_t: float
    sin_t: float
    key_dir: np.ndarray  # unit vector towards the key light (camera frame)
    key_i: float
    ring_i: float
    ambient: float
    light_rgb: np.ndarray
    metal_rgb: np.ndarray
    exposure: float
    ring_tex: np.ndarray  # machining-ring albedo modulation sampled every 0.1 mm of radius
    spec_tex: np.ndarray


def _sample_scene(rng: np.random.Generator, intr: CameraIntrinsics) -> _Scene:
    z_top = TABLE_DISTANCE_MM - PART_H
    # Nominal position: the part's image centred on the image centre (= the model's crop centre).
    x_nom = ((intr.width - 1) / 2.0 - intr.cx) * z_top / intr.fx
    y_nom = ((intr.height - 1) / 2.0 - intr.cy) * z_top / intr.fy
    dx, dy = np.clip(rng.normal(0.0, 2.0, 2), -5.0, 5.0)
    theta = math.radians(rng.uniform(-15.0, 15.0))
    # Key light up-left of the camera; direction and intensities vary by ~10 %.
    kx, ky = -0.42 * rng.uniform(0.9, 1.1), -0.30 * rng.uniform(0.9, 1.1)
    rot = math.radians(rng.uniform(-6.0, 6.0))
    kx, ky = kx * math.cos(rot) - ky * math.sin(rot), kx * math.sin(rot) + ky * math.cos(rot)
    key = np.array([kx, ky, -1.0], dtype=np.float32)
    key /= np.linalg.norm(key)
    key_i = 0.62 * rng.uniform(0.9, 1.1)
    ring_i = 0.42 * rng.uniform(0.9, 1.1)
    ambient = 0.10 * rng.uniform(0.9, 1.1)
    light_rgb = np.array([1.0, 0.985, 0.96], dtype=np.float32) * (1.0 + rng.normal(0, 0.01, 3))
    metal_rgb = _srgb_to_linear((122, 125, 130)) * (1.0 + rng.normal(0.0, 0.025, 3))
    exposure = rng.uniform(0.95, 1.05)
    # Turned rings: smooth random function of radius (pitch 0.6-5 mm) + a few sharp tool marks.
    n = int((PART_R + 2.0) * 10) + 2
    w = rng.standard_normal(n)
    k = np.exp(-0.5 * (np.arange(-40, 41) / 12.0) ** 2)
    smooth = np.convolve(w, k / k.sum(), mode="same")
    smooth /= smooth.std() + 1e-9
    fine = np.convolve(w, np.ones(5) / 5.0, mode="same")
    fine /= fine.std() + 1e-9
    ring_tex = (1.0 + 0.045 * smooth + 0.03 * fine).astype(np.float32)
    spec_tex = (1.0 + 0.25 * smooth + 0.15 * fine).astype(np.float32)
    return _Scene(
        x0=x_nom + float(dx), y0=y_nom + float(dy), theta=theta,
        cos_t=math.cos(theta), sin_t=math.sin(theta), key_dir=key, key_i=key_i, ring_i=ring_i,
        ambient=ambient, light_rgb=light_rgb.astype(np.float32),
        metal_rgb=metal_rgb.astype(np.float32), exposure=exposure, ring_tex=ring_tex,
        spec_tex=np.clip(spec_tex, 0.2, None),
    )


@dataclass
class _Defect:
    kind: str
    cx: float            # centre in part coordinates (mm)
    cy: float
    p: dict


def _clearance(x, y):
    """Distance (mm) from points of the part's top face (part coordinates, scalars or arrays) to
    the nearest feature edge (outer chamfer, bore chamfer, bolt holes); negative off the flat top
    face."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    r = np.hypot(x, y)
    d = np.minimum((PART_R - CHAMFER) - r, r - (BORE_R + BORE_CHAMFER))
    for k in range(N_BOLTS):
        a = 2.0 * math.pi * k / N_BOLTS
        d = np.minimum(d, np.hypot(x - BOLT_PCD_R * math.cos(a), y - BOLT_PCD_R * math.sin(a))
                       - BOLT_R - BOLT_CHAMFER)
    return d


def _random_point(rng: np.random.Generator, margin: float) -> tuple[float, float]:
    for _ in range(500):
        r = math.sqrt(rng.uniform(0.0, 1.0)) * (PART_R - CHAMFER)
        a = rng.uniform(0.0, 2.0 * math.pi)
        x, y = r * math.cos(a), r * math.sin(a)
        if float(_clearance(x, y)) >= margin:
            return float(x), float(y)
    raise RuntimeError(f"no room for a defect with margin {margin:.1f} mm")  # pragma: no cover


def _harmonics(rng: np.random.Generator, amp: float) -> list[tuple[int, float, float]]:
    return [(k, float(rng.uniform(0.3, 1.0) * amp / k ** 0.5), float(rng.uniform(0, 2 * math.pi)))
            for k in (2, 3, 5)]


def _sample_defect(rng: np.random.Generator, kind: str) -> _Defect:
    # Sizes are physical: given in pixels of the reference camera (D435 colour at 640x480)
    # on the part's top face, so other cameras see the same defects at their own scale.
    mm_px = _REF_MM_PER_PX
    if kind in ("dent", "bump", "geo_dent", "geo_bump"):
        dent = kind in ("dent", "geo_dent")
        lo, hi = (12.5, 17.0) if dent else (12.0, 16.0)
        a = rng.uniform(lo, hi) * mm_px
        b = a * rng.uniform(0.75, 1.0)
        depth = rng.uniform(1.5, 4.0) if dent else rng.uniform(1.5, 3.5)
        x, y = _random_point(rng, 0.85 * a)
        return _Defect(kind, x, y, dict(a=a, b=b, ang=rng.uniform(0, math.pi), h=depth))
    if kind == "hole":
        a = rng.uniform(11.5, 13.5) * mm_px
        x, y = _random_point(rng, a * 1.15 + 0.5)
        return _Defect(kind, x, y, dict(a=a, depth=rng.uniform(6.0, 12.0),
                                        harm=_harmonics(rng, 0.10)))
    if kind == "stain":
        a = rng.uniform(14.0, 24.0) * mm_px
        x, y = _random_point(rng, 0.8 * a)
        oil = rng.uniform() < 0.5
        color = _srgb_to_linear((30, 26, 20) if oil else (128, 56, 18))
        color = color * (1.0 + rng.normal(0, 0.08, 3)).astype(np.float32)
        return _Defect(kind, x, y, dict(
            a=a, harm=_harmonics(rng, 0.22), alpha=rng.uniform(0.85, 0.97), color=color,
            oil=oil, ph=rng.uniform(0, 2 * math.pi, 2)))
    if kind == "scratch":
        width = rng.uniform(3.5, 5.5) * mm_px
        length_px = rng.uniform(60.0, 150.0)
        # Both ends on the flat top face (clear of edges and holes by a width), at least 85 % of
        # the path on the part; the scratch may cross the groove, bore or a bolt hole between.
        # Candidates are tried in vectorised batches; too long a scratch is shortened.
        ts = np.linspace(-0.5, 0.5, 41)
        while True:
            length = length_px * mm_px
            n = 128
            r = np.sqrt(rng.uniform(0.0, 1.0, n)) * (PART_R - CHAMFER)
            a = rng.uniform(0.0, 2.0 * math.pi, n)
            ang = rng.uniform(0.0, math.pi, n)
            cx, cy = r * np.cos(a), r * np.sin(a)
            ux, uy = np.cos(ang), np.sin(ang)
            clear = _clearance(cx[:, None] + length * ts * ux[:, None],
                               cy[:, None] + length * ts * uy[:, None])
            ok = (clear[:, 0] >= width) & (clear[:, -1] >= width) & ((clear > 0).mean(1) >= 0.85)
            if ok.any():
                i = int(np.argmax(ok))
                x, y, ux, uy = float(cx[i]), float(cy[i]), float(ux[i]), float(uy[i])
                break
            length_px = max(60.0, length_px * 0.9)
        return _Defect(kind, x, y, dict(
            ux=ux, uy=uy, length=length, hw=width / 2.0, depth=rng.uniform(0.35, 0.8),
            wob=rng.uniform(0.2, 0.8), wl=rng.uniform(40.0, 90.0), wph=rng.uniform(0, 2 * math.pi),
            contrast=rng.uniform(0.9, 1.4) if rng.uniform() < 0.3 else -rng.uniform(0.45, 0.65)))
    if kind == "missing_chunk":
        # A circular segment broken off the rim: everything beyond a chord 10-20 mm inside the
        # outer edge, the fracture line wobbling by up to ~0.8 mm.
        phi = rng.uniform(0.0, 2.0 * math.pi)
        r_c = PART_R - rng.uniform(10.0, 20.0)
        wob = [(float(rng.uniform(0.15, 0.3)), float(rng.uniform(3.0, 9.0)),
                float(rng.uniform(0, 2 * math.pi))) for _ in range(3)]
        return _Defect(kind, r_c * math.cos(phi), r_c * math.sin(phi),
                       dict(ux=math.cos(phi), uy=math.sin(phi), r_c=r_c, wob=wob))
    raise ValueError(kind)  # pragma: no cover


def _chunk_cut(d: _Defect, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """True where ``missing_chunk`` removed the part (part coordinates, mm)."""
    p = d.p
    s = x * np.float32(p["ux"]) + y * np.float32(p["uy"])        # along the radius through it
    t = y * np.float32(p["ux"]) - x * np.float32(p["uy"])        # along the chord
    edge = np.float32(p["r_c"])
    for amp, wl, ph in p["wob"]:
        edge = edge + np.float32(amp) * np.sin(t * np.float32(2 * math.pi / wl) + np.float32(ph))
    return s > edge


def _defect_extent(d: _Defect) -> float:
    """Radius (mm) around (d.cx, d.cy) outside which a geometry defect changes nothing."""
    if d.kind == "missing_chunk":
        r_in = d.p["r_c"] - sum(w[0] for w in d.p["wob"])
        return math.sqrt(max(PART_R ** 2 - r_in ** 2, 0.0)) + (PART_R - d.p["r_c"]) + 1.0
    return float(d.p["a"]) + 1.0


def _defect_fields(d: Optional[_Defect], x: np.ndarray, y: np.ndarray, need_albedo: bool):
    """-> (dh, alb_factor, stain_alpha) at part coordinates x, y (mm); None for a field the
    defect does not have. Contributions below the mask thresholds are zeroed, so the mask marks
    exactly the pixels a defect changes."""
    dh, alb, alpha = _defect_fields_raw(d, x, y, need_albedo)
    if dh is not None:
        dh = np.where(np.abs(dh) > _MASK_DH_MM, dh, np.float32(0.0))
    if alb is not None:
        alb = np.where(np.abs(alb - 1.0) > _MASK_DALB, alb, np.float32(1.0))
    if alpha is not None:
        alpha = np.where(alpha > _MASK_DALB, alpha, np.float32(0.0))
    return dh, alb, alpha



def _blob_radius(u, v, p):
    """Distance from the defect centre and the blob's wobbly edge radius at that angle."""
    rho = np.sqrt(u * u + v * v)
    th = np.arctan2(v, u)
    edge = np.ones_like(rho)
    for k, amp, ph in p["harm"]:
        edge += amp * np.cos(k * th + ph)
    return rho, edge * np.float32(p["a"])

def _defect_fields_raw(d: Optional[_Defect], x: np.ndarray, y: np.ndarray, need_albedo: bool):
    if d is None:
        return None, None, None
    u = x - np.float32(d.cx)
    v = y - np.float32(d.cy)
    p = d.p
    if d.kind in ("dent", "bump", "geo_dent", "geo_bump"):
        c, s = math.cos(p["ang"]), math.sin(p["ang"])
        a1 = (u * c + v * s) / p["a"]
        a2 = (v * c - u * s) / p["b"]
        prof = np.maximum(1.0 - (a1 * a1 + a2 * a2), 0.0)
        dh = prof * prof * np.float32(p["h"] if d.kind in ("bump", "geo_bump") else -p["h"])
        return dh, None, None
    if d.kind == "missing_chunk":
        return None, None, None          # handled in _height (the part is absent there)
    if d.kind == "hole":
        rho, edge = _blob_radius(u, v, p)
        inside = _smoothstep((edge - rho) / 0.7)
        bowl = 0.75 + 0.25 * np.maximum(1.0 - (rho / edge) ** 2, 0.0)
        lip = 0.25 * np.exp(-(((rho - edge - 0.9) / 0.8) ** 2))   # raised burr around the pit
        dh = (lip - np.float32(p["depth"]) * bowl * inside).astype(np.float32)
        alb = (1.0 - 0.65 * inside).astype(np.float32) if need_albedo else None
        return dh, alb, None
    if d.kind == "scratch":
        t = u * p["ux"] + v * p["uy"]
        n = v * p["ux"] - u * p["uy"] - p["wob"] * np.sin(2 * np.pi * t / p["wl"] + p["wph"])
        half = 0.5 * p["length"]
        prof = np.maximum(1.0 - (n / p["hw"]) ** 2, 0.0)
        taper = _smoothstep((half - np.abs(t)) / (0.08 * p["length"]))
        k = prof * taper
        dh = (-p["depth"]) * k
        alb = None
        if need_albedo:
            alb = (1.0 + p["contrast"] * np.minimum(2.0 * k, 1.0)).astype(np.float32)
        return dh.astype(np.float32), alb, None
    if d.kind == "stain":
        if not need_albedo:
            return None, None, None
        rho, edge = _blob_radius(u, v, p)
        ph = p["ph"]
        mottle = 0.5 + 0.5 * np.sin(u / 2.7 + ph[0]) * np.sin(v / 3.3 + ph[1])
        alpha = p["alpha"] * _smoothstep((edge - rho) / 2.0) * (1.0 - 0.12 * mottle)
        return None, None, alpha.astype(np.float32)
    raise ValueError(d.kind)  # pragma: no cover


def _part_coords(sc: _Scene, X: np.ndarray, Y: np.ndarray):
    dx = X - np.float32(sc.x0)
    dy = Y - np.float32(sc.y0)
    return dx * sc.cos_t + dy * sc.sin_t, dy * sc.cos_t - dx * sc.sin_t


def _nominal_height(x: np.ndarray, y: np.ndarray):
    """Height (mm above the table) of the defect-free flange at part coordinates x, y, and the
    'solid' mask (point lies on the part, not in a hole or beyond its edge)."""
    r = np.sqrt(x * x + y * y)
    h = np.float32(PART_H) - np.maximum(r - (PART_R - CHAMFER), 0.0)
    h -= np.maximum((BORE_R + BORE_CHAMFER) - r, 0.0)
    g = np.maximum(1.0 - ((r - GROOVE_R) / GROOVE_HW) ** 2, 0.0)
    h -= np.float32(GROOVE_D) * np.sqrt(g)
    # Nearest bolt hole via the polar angle.
    step = 2.0 * np.pi / N_BOLTS
    th = np.arctan2(y, x)
    a = th - np.rint(th / step) * step
    db = np.sqrt(np.maximum(r * r + BOLT_PCD_R ** 2 - 2.0 * BOLT_PCD_R * r * np.cos(a), 0.0))
    h -= np.maximum((BOLT_R + BOLT_CHAMFER) - db, 0.0)
    solid = (r < PART_R) & (r > BORE_R) & (db > BOLT_R)
    return h, solid


def _height(x, y, d: Optional[_Defect]):
    h, solid = _nominal_height(x, y)
    dh, _, _ = _defect_fields(d, x, y, need_albedo=False)
    if dh is not None:
        h = h + dh
    if d is not None and d.kind == "missing_chunk":
        solid = solid & ~_chunk_cut(d, x, y)
    return np.where(solid, h, np.float32(0.0)).astype(np.float32, copy=False)


# --- rendering -----------------------------------------------------------------------------------

def _roi(sc: _Scene, intr: CameraIntrinsics, margin_mm: float) -> tuple[int, int, int, int]:
    z_top = TABLE_DISTANCE_MM - PART_H - MAX_DEFECT_RISE
    uc = intr.cx + intr.fx * sc.x0 / z_top
    vc = intr.cy + intr.fy * sc.y0 / z_top
    ru = intr.fx * (PART_R + margin_mm) / z_top
    rv = intr.fy * (PART_R + margin_mm) / z_top
    u0 = max(0, int(math.floor(uc - ru)))
    u1 = min(intr.width, int(math.ceil(uc + ru)) + 1)
    v0 = max(0, int(math.floor(vc - rv)))
    v1 = min(intr.height, int(math.ceil(vc + rv)) + 1)
    return v0, v1, u0, u1


def _raycast(sc: _Scene, d: Optional[_Defect], xn: np.ndarray, yn: np.ndarray,
             tz: np.ndarray) -> np.ndarray:
    """Depth (mm) where each ray (xn, yn; flat arrays) first meets table + part height field."""
    z = np.full(xn.shape, TABLE_DISTANCE_MM - PART_H - MAX_DEFECT_RISE - 2.0, dtype=np.float32)
    z = np.minimum(z, tz - PART_H - MAX_DEFECT_RISE - 1.0)
    # Rays that stay clear of the part's cylinder over the whole depth range hit the table.
    px, py = _part_coords(sc, tz * xn, tz * yn)
    reach = (tz - z) * np.sqrt(xn * xn + yn * yn) + 0.5
    near = px * px + py * py < (PART_R + reach) ** 2
    z = np.where(near, z, tz)
    idx = np.flatnonzero(near)
    zi, xi, yi, ti = z[idx], xn[idx], yn[idx], tz[idx]
    loi = zi.copy()
    hii = np.full_like(zi, np.inf)
    for _ in range(_N_ITERS):
        X = zi * xi
        Y = zi * yi
        px, py = _part_coords(sc, X, Y)
        s = ti - _height(px, py, d)          # surface depth under the current ray point
        above = s >= zi
        loi = np.where(above, zi, loi)
        hii = np.where(above, hii, zi)
        mid = 0.5 * (loi + hii)
        znew = np.where(above & (s < hii), s, mid)
        # Finished: fixed point reached, or bracket tight enough.
        done = (above & (np.abs(s - zi) < 0.01)) | (hii - loi < 0.01)
        z[idx] = np.where(done, np.where(above, s, mid), znew)
        keep = ~done
        if not keep.any():
            break
        idx = idx[keep]
        zi, loi, hii = znew[keep], loi[keep], hii[keep]
        xi, yi, ti = xi[keep], yi[keep], ti[keep]
    return z


def _normals(z: np.ndarray, xn: np.ndarray, yn: np.ndarray):
    """Unit normals (towards the camera) of the surface z(u, v) (mm), ROI arrays. Uses the
    one-sided difference with the smaller step at each pixel so depth edges keep the normal of
    the surface they belong to."""
    def minmod_diff(a, axis):
        f = np.diff(a, axis=axis, append=np.take(a, [-1], axis=axis))
        b = np.diff(a, axis=axis, prepend=np.take(a, [0], axis=axis))
        return np.where(np.abs(f) < np.abs(b), f, b)

    dzu = minmod_diff(z, 1)
    dzv = minmod_diff(z, 0)
    X = xn[None, :]
    Y = yn[:, None]
    # P = z * (X, Y, 1); dP/du = dzu * (X, Y, 1) + z * (du, 0, 0), du = dX per pixel.
    du = np.float32(xn[1] - xn[0]) if xn.size > 1 else np.float32(1e-3)
    dv = np.float32(yn[1] - yn[0]) if yn.size > 1 else np.float32(1e-3)
    ax, ay, az = dzu * X + z * du, dzu * Y, dzu
    bx, by, bz = dzv * X, dzv * Y + z * dv, dzv
    nx = ay * bz - az * by
    ny = az * bx - ax * bz
    nz = ax * by - ay * bx
    inv = 1.0 / np.sqrt(nx * nx + ny * ny + nz * nz + 1e-12)
    nx, ny, nz = nx * inv, ny * inv, nz * inv
    flip = nz > 0                       # make normals face the camera (-z)
    return np.where(flip, -nx, nx), np.where(flip, -ny, ny), np.where(flip, -nz, nz)


def _check_defect(defect: Optional[str]) -> Optional[str]:
    if defect is None or defect == GOOD_LABEL:
        return None
    if defect not in ALL_DEFECT_TYPES:
        raise ValueError(f"unknown defect {defect!r}; valid: None/'good' or one of "
                         f"{', '.join(ALL_DEFECT_TYPES)}")
    return defect


def _check_placement(placement: str) -> str:
    if placement not in PLACEMENTS:
        raise ValueError(f"placement must be one of {', '.join(PLACEMENTS)}, got {placement!r}")
    return placement


def _workspace(intr: CameraIntrinsics) -> tuple[float, float, float, float]:
    """(x_min, x_max, y_min, y_max), mm: where random placement may put the part's axis so that
    its rim, PLACEMENT_MARGIN_MM and the longest shadow stay in the image. Bounds use the
    nearest depth any of it can have, where a given extent looks largest."""
    keep = PART_R + PLACEMENT_MARGIN_MM + _MAX_SHADOW_MM
    sx, sy = TABLE_SLOPE
    # nearest table depth over the image (+/- 1 px beyond it), minus the tallest the part gets
    corners = [(u, v) for u in (-1.0 - intr.cx, intr.width - intr.cx)
               for v in (-1.0 - intr.cy, intr.height - intr.cy)]
    t_min = min(TABLE_DISTANCE_MM / (1.0 - sx * u / intr.fx - sy * v / intr.fy)
                for u, v in corners)
    t_min = min(t_min, TABLE_DISTANCE_MM)
    z = t_min - PART_H - MAX_DEFECT_RISE
    # A point at lateral offset X projects at cx + fx X / z; keep u in [0, W-1], v in [0, H-1].
    x_lo, x_hi = -intr.cx * z / intr.fx + keep, (intr.width - 1 - intr.cx) * z / intr.fx - keep
    y_lo, y_hi = -intr.cy * z / intr.fy + keep, (intr.height - 1 - intr.cy) * z / intr.fy - keep
    if x_lo > x_hi or y_lo > y_hi:
        raise ValueError(f"a {intr.width}x{intr.height} image (fx={intr.fx:.0f}) is too small "
                         "to hold the part for placement='random'")
    return x_lo, x_hi, y_lo, y_hi


def _place_randomly(sc: _Scene, rng: np.random.Generator, intr: CameraIntrinsics) -> None:
    """Uniform position in the workspace and uniform yaw in [0, 360) degrees (in place)."""
    x_lo, x_hi, y_lo, y_hi = _workspace(intr)
    sc.x0 = float(rng.uniform(x_lo, x_hi))
    sc.y0 = float(rng.uniform(y_lo, y_hi))
    sc.theta = float(rng.uniform(0.0, 2.0 * math.pi))
    sc.cos_t, sc.sin_t = math.cos(sc.theta), math.sin(sc.theta)


def _ground_truth(sc: _Scene) -> dict:
    """Pose of the part and the table plane in the camera optical frame (metres)."""
    sx, sy = TABLE_SLOPE
    t = TABLE_DISTANCE_MM + sx * sc.x0 + sy * sc.y0        # table depth on the part's axis
    n = math.sqrt(sx * sx + sy * sy + 1.0)
    return dict(
        part_center_camera_m=(sc.x0 * 1e-3, sc.y0 * 1e-3, (t - 0.5 * PART_H) * 1e-3),
        part_yaw_deg=math.degrees(sc.theta) % 360.0,
        part_height_m=PART_H * 1e-3,
        part_radius_m=PART_R * 1e-3,
        # sx*X + sy*Y - Z + D = 0 (mm), normalised; normal (sx, sy, -1) faces the camera
        table_plane=(sx / n, sy / n, -1.0 / n, TABLE_DISTANCE_MM * 1e-3 / n),
    )


def _grow1(m: np.ndarray) -> np.ndarray:
    """Boolean mask grown by one pixel (8-neighbourhood)."""
    grown = m.copy()
    grown[1:, :] |= m[:-1, :]
    grown[:-1, :] |= m[1:, :]
    grown[:, 1:] |= grown[:, :-1].copy()
    grown[:, :-1] |= grown[:, 1:].copy()
    return grown


def _check_seed(seed) -> int:
    import operator

    try:
        s = operator.index(seed)
    except TypeError:
        raise TypeError(f"seed must be an integer, got {type(seed).__name__}") from None
    if s < 0:
        raise ValueError(f"seed must be >= 0, got {s}")
    return int(s)


def render_scene(seed: int, defect: Optional[str] = None,
                 intrinsics: CameraIntrinsics = D435_COLOR_640X480, *,
                 placement: str = "centered", depth_artifacts: bool = False) -> SyntheticFrame:
    """Render one frame. Deterministic: the same arguments give bit-identical arrays. The part
    pose, lights and sensor noise depend on ``seed`` (and ``placement``) only; the defect's shape
    and place on (seed, defect). So ``render_scene(s, "stain")`` equals ``render_scene(s)``
    everywhere outside its mask, which makes per-seed good/defect pairs directly comparable.

    ``defect``: None or ``"good"`` for a defect-free part, else one of :data:`ALL_DEFECT_TYPES`
    (the :data:`GEOMETRY_DEFECT_TYPES` change depth only: colour equals the good frame's).
    ``placement``: ``"centered"`` (part near the image centre, yaw within +/-15 degrees) or
    ``"random"`` (anywhere in the workspace, any yaw; lights and noise as for "centered").
    ``depth_artifacts``: add D435-like dropouts on dark surfaces, hole blobs and flying pixels
    at depth edges. ``info`` holds the ground-truth pose and table plane (module docstring).
    """
    seed = _check_seed(seed)
    defect = _check_defect(defect)
    placement = _check_placement(placement)
    intr = intrinsics
    st = _static(intr)
    H, W = intr.height, intr.width
    rng = np.random.default_rng([seed, 0x5CE4E])
    sc = _sample_scene(rng, intr)
    if placement == "random":
        _place_randomly(sc, np.random.default_rng([seed, _PLACEMENT_STREAM]), intr)
    dfc = None
    if defect is not None:
        drng = np.random.default_rng([seed, zlib.crc32(defect.encode()) & 0x7FFFFFFF])
        dfc = _sample_defect(drng, defect)
    # Geometry-only defects: shade the defect-free surface, use the defect only for depth.
    geo = dfc if defect in GEOMETRY_DEFECT_TYPES else None
    if geo is not None:
        dfc = None

    # Lighting of the flat table (constant outside the part's neighbourhood).
    nt = st.table_n
    lam_key_t = max(0.0, float(nt @ sc.key_dir))
    lam_ring_t = float(-nt[2])
    illum_t = (sc.ambient + sc.key_i * lam_key_t + sc.ring_i * lam_ring_t) * sc.exposure
    gain_t = (illum_t * sc.light_rgb) ** _GAMMA
    color = st.table_base * gain_t[None, None, :].astype(np.float32)
    depth = st.table_z.copy()
    mask = np.zeros((H, W), dtype=np.uint8)

    # Region around the part: ray cast and full shading.
    lxy = float(np.hypot(sc.key_dir[0], sc.key_dir[1]) / -sc.key_dir[2])
    v0, v1, u0, u1 = _roi(sc, intr, PART_H * lxy + 14.0)
    if v1 - v0 >= 2 and u1 - u0 >= 2:
        xn = st.xn[u0:u1]
        yn = st.yn[v0:v1]
        tz = st.table_z[v0:v1, u0:u1]
        XN = np.broadcast_to(xn[None, :], tz.shape).ravel()
        YN = np.broadcast_to(yn[:, None], tz.shape).ravel()
        z = _raycast(sc, dfc, XN, YN, tz.ravel()).reshape(tz.shape)
        c_roi, m_roi = _shade_roi(sc, dfc, st, z, xn, yn, tz, v0, v1, u0, u1)
        if geo is not None:
            z, m_roi = _geometry_defect_depth(sc, geo, intr, z, xn, yn, tz)
        color[v0:v1, u0:u1] = c_roi
        depth[v0:v1, u0:u1] = z
        mask[v0:v1, u0:u1] = m_roi

    # Sensor: depth noise, quantisation, stereo-occlusion dropouts; colour noise. Gaussian noise
    # comes from a fixed bank at a per-frame random offset (drawing 1.2 M normals per frame
    # would be a quarter of the render time).
    n_px = H * W
    bank = _noise_bank(4 * n_px)
    off_d, off_c = (int(o) for o in rng.integers(0, bank.size - 3 * n_px, 2))
    arng = edges = None
    depth_geom = depth                               # the occlusion band needs true depth
    if depth_artifacts:
        arng = np.random.default_rng([seed, _ARTIFACT_STREAM])
        if v1 - v0 >= 2 and u1 - u0 >= 2:
            depth = depth.copy()
            edges = _flying_pixels(depth[v0:v1, u0:u1], arng)
    sigma = depth * np.float32(1.0 / 500.0)
    sigma *= sigma                                   # 1 mm at 0.5 m, grows with z^2
    zq = bank[off_d:off_d + n_px].reshape(H, W) * sigma
    zq += depth
    zq += np.float32(0.5)                            # round half up on the cast below
    np.clip(zq, 1.0, 65535.0, out=zq)
    depth_mm = zq.astype(np.uint16)
    if v1 - v0 >= 2 and u1 - u0 >= 2:
        invalid = _occlusion_band(depth_geom[v0:v1, u0:u1], intr.fx, rng)
        depth_mm[v0:v1, u0:u1][invalid] = 0
    color += bank[off_c:off_c + 3 * n_px].reshape(H, W, 3) * np.float32(_COLOR_NOISE)
    color += np.float32(0.5)
    np.clip(color, 0.0, 255.0, out=color)
    color_u8 = color.astype(np.uint8)
    if depth_artifacts:
        _dropouts(depth_mm, color_u8, edges, (v0, v1, u0, u1), arng)
    info = dict(part_center_mm=(sc.x0, sc.y0), part_rotation_deg=math.degrees(sc.theta))
    d_info = dfc if dfc is not None else geo
    if d_info is not None:
        info["defect_center_part_mm"] = (d_info.cx, d_info.cy)
    info.update(_ground_truth(sc))
    return SyntheticFrame(color=color_u8, depth_mm=depth_mm, mask=mask,
                          label=defect or GOOD_LABEL, intrinsics=intr, seed=seed, info=info)


def _geometry_defect_depth(sc: _Scene, d: _Defect, intr: CameraIntrinsics, z, xn, yn, tz):
    """Depth of the ROI with a geometry-only defect, and its mask, from the defect-free depth z.

    Only rays that can pass over the defect are cast again: those whose pixel sees the disc
    around it anywhere between the tallest part and the table. Changes of 0.02 mm or less are
    dropped, so the depth equals the good frame's exactly outside the mask."""
    rad = _defect_extent(d)
    cx = sc.x0 + d.cx * sc.cos_t - d.cy * sc.sin_t          # defect centre, camera X, Y (mm)
    cy = sc.y0 + d.cx * sc.sin_t + d.cy * sc.cos_t
    z_near = float(tz.min()) - PART_H - MAX_DEFECT_RISE - 1.0
    z_far = float(tz.max()) + 1.0
    us = [x / zz for x in (cx - rad, cx + rad) for zz in (z_near, z_far)]
    vs = [y / zz for y in (cy - rad, cy + rad) for zz in (z_near, z_far)]
    # xn, yn increase with the index: window = rays whose normalised coordinate is in range
    a0, a1 = np.searchsorted(xn, min(us)), np.searchsorted(xn, max(us), side="right")
    b0, b1 = np.searchsorted(yn, min(vs)), np.searchsorted(yn, max(vs), side="right")
    a0, b0 = max(int(a0) - 1, 0), max(int(b0) - 1, 0)
    a1, b1 = min(int(a1) + 1, xn.size), min(int(b1) + 1, yn.size)
    z_def = z.copy()
    changed = np.zeros(z.shape, dtype=bool)
    if a1 > a0 and b1 > b0:
        tzw = tz[b0:b1, a0:a1]
        XN = np.broadcast_to(xn[None, a0:a1], tzw.shape).ravel()
        YN = np.broadcast_to(yn[b0:b1, None], tzw.shape).ravel()
        zw = _raycast(sc, d, XN, YN, tzw.ravel()).reshape(tzw.shape)
        ch = np.abs(zw - z[b0:b1, a0:a1]) > _MASK_DH_MM
        z_def[b0:b1, a0:a1] = np.where(ch, zw, z[b0:b1, a0:a1])
        changed[b0:b1, a0:a1] = ch
    return z_def, _grow1(changed).astype(np.uint8) * 255


def _depth_edges(z: np.ndarray):
    """Per pixel: the largest depth step to a 4-neighbour (signed, neighbour - z) and whether
    it exceeds _EDGE_MM."""
    step = np.zeros_like(z)
    for sl_a, sl_b in (((slice(None), slice(1, None)), (slice(None), slice(None, -1))),
                       ((slice(None), slice(None, -1)), (slice(None), slice(1, None))),
                       ((slice(1, None), slice(None)), (slice(None, -1), slice(None))),
                       ((slice(None, -1), slice(None)), (slice(1, None), slice(None)))):
        d = z[sl_b] - z[sl_a]                 # neighbour minus pixel, for the pixels sl_a
        cur = step[sl_a]
        step[sl_a] = np.where(np.abs(d) > np.abs(cur), d, cur)
    return step, np.abs(step) > _EDGE_MM


def _flying_pixels(z: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Stereo matching windows straddling a depth edge report a depth in between: move a
    fraction of the edge pixels of z (ROI, mm, in place) part of the way to the other side.
    Returns the edge map (for the hole blobs)."""
    step, edge = _depth_edges(z)
    pick, frac = rng.random((2,) + z.shape, dtype=np.float32)
    fly = edge & (pick < _FLYING_FRACTION)
    z[fly] += (np.float32(0.15) + np.float32(0.7) * frac[fly]) * step[fly]
    return edge


def _dropouts(depth_mm: np.ndarray, color: np.ndarray, edges: Optional[np.ndarray],
              roi: tuple[int, int, int, int], rng: np.random.Generator) -> None:
    """Zero depth (in place) where a D435 loses it: dark, texture-poor surfaces (probability
    rising as the 8-bit luma falls below 60) and small blobs along depth edges."""
    if edges is not None:
        v0, v1, u0, u1 = roi
        seeds = rng.random(edges.shape, dtype=np.float32)
        blob = _grow1(edges & (seeds < 0.02))            # 3x3 blobs ...
        blob |= _grow1(_grow1(edges & (seeds > 0.99)))    # ... and a few 5x5 ones
        depth_mm[v0:v1, u0:u1][blob] = 0
    # Luma (BT.601) in 8-bit levels; one uniform per pixel, so frames of a seed share dropouts
    # wherever their colour is the same.
    c = color.astype(np.float32)
    luma = c[..., 0] * np.float32(0.299) + c[..., 1] * np.float32(0.587) \
        + c[..., 2] * np.float32(0.114)
    p = np.clip((np.float32(_DARK_LUMA) - luma) * np.float32(1.0 / _DARK_LUMA), 0.0, 1.0)
    p *= np.float32(_DARK_DROP_MAX)
    depth_mm[rng.random(luma.shape, dtype=np.float32) < p] = 0


def _occlusion_band(z: np.ndarray, fx: float, rng: np.random.Generator) -> np.ndarray:
    """Pixels the D435's right imager cannot see: background just left of a nearer surface
    (band width = baseline * fx * (1/z_near - 1/z_far) pixels), with ragged edges."""
    occ = np.zeros(z.shape, dtype=bool)
    bf = np.float32(BASELINE_MM * fx)
    inv = 1.0 / z
    for k in range(1, 9):
        # pixel (v, u) occluded if some pixel k to the right is nearer by more than k px disparity
        disp = (inv[:, k:] - inv[:, :-k]) * bf
        occ[:, :-k] |= disp > (k - 0.5)
    jitter = rng.random(z.shape, dtype=np.float32)
    return occ & (jitter < 0.85)


def _shade_roi(sc: _Scene, d: Optional[_Defect], st: _Static, z, xn, yn, tz, v0, v1, u0, u1):
    """Colour (float sRGB 0-255) and defect mask of the ROI from its depth map z (mm)."""
    X = z * xn[None, :]
    Y = z * yn[:, None]
    px, py = _part_coords(sc, X, Y)
    h_hit = tz - z                                    # height of the hit point above the table
    h_nom, solid = _nominal_height(px, py)
    r = np.sqrt(px * px + py * py)
    part = solid & (h_hit > 0.3)                      # surface belongs to the part
    dh, alb_f, stain = _defect_fields(d, px, py, need_albedo=True)

    nx, ny, nz = _normals(z, xn, yn)
    # View vector (towards the camera).
    inv = 1.0 / np.sqrt(X * X + Y * Y + z * z)
    vx, vy, vz = -X * inv, -Y * inv, -z * inv
    k = sc.key_dir
    lam_key = np.maximum(nx * k[0] + ny * k[1] + nz * k[2], 0.0)
    lam_ring = np.maximum(-nz, 0.0)

    # Ambient occlusion: cavities (depth below the nominal top, or below the table's part
    # footprint) get less light; the table darkens near the part's foot.
    below = np.where(r < PART_R, PART_H - h_hit, 0.0)
    ao = 1.0 / (1.0 + (np.maximum(below, 0.0) / 6.0) ** 2)
    foot = np.maximum(r - PART_R, 0.0)
    ao = np.where(part | (r < PART_R), ao, 1.0 - 0.35 * np.exp(-foot / 3.5))

    # Soft cast shadow of the key light on the table: the segment from the table point towards
    # the light, up to the part's height, passes within PART_R of the part's axis.
    lx, ly = k[0] / -k[2], k[1] / -k[2]
    ex, ey = PART_H * lx, PART_H * ly
    qx = X - np.float32(sc.x0)
    qy = Y - np.float32(sc.y0)
    t = np.clip(-(qx * ex + qy * ey) / (ex * ex + ey * ey), 0.0, 1.0)
    dist = np.sqrt((qx + t * ex) ** 2 + (qy + t * ey) ** 2)
    lit = 1.0 - _smoothstep((PART_R + 2.0 - dist) / 4.0)
    lit = np.where(part, 1.0, lit)

    # Albedo.
    ring_i = np.clip((r * 10.0).astype(np.int32), 0, sc.ring_tex.size - 1)
    metal = sc.metal_rgb[None, None, :] * sc.ring_tex[ring_i][..., None]
    wall_dark = np.where(h_hit < h_nom - 1.5, 0.8, 1.0)[..., None]     # rough bored walls
    metal = metal * wall_dark
    spec_w = sc.spec_tex[ring_i]
    if alb_f is not None:
        metal = metal * alb_f[..., None]
        spec_w = spec_w * np.clip(alb_f, 0.3, 2.0)
    if stain is not None:
        a = stain[..., None]
        metal = metal * (1.0 - a) + d.p["color"][None, None, :] * a
        spec_w = spec_w * (1.0 - 0.7 * stain if d.p["oil"] else np.maximum(1.0 - 1.4 * stain, 0.0))
    table_alb = st.table_alb[v0:v1, u0:u1]
    alb = np.where(part[..., None], metal, table_alb)

    diffuse = sc.ambient + (sc.key_i * lam_key * lit + sc.ring_i * lam_ring)
    # Anisotropic (Kajiya-Kay) highlight of the turned surface: grooves run around the axis.
    tx = -(Y - np.float32(sc.y0))
    ty = X - np.float32(sc.x0)
    tn = 1.0 / np.sqrt(tx * tx + ty * ty + 1e-6)
    tx, ty = tx * tn, ty * tn
    tdn = tx * nx + ty * ny                       # project the tangent on the surface
    tx, ty, tz_ = tx - tdn * nx, ty - tdn * ny, -tdn * nz
    tn = 1.0 / np.sqrt(tx * tx + ty * ty + tz_ * tz_ + 1e-9)
    hx, hy, hz = k[0] + vx, k[1] + vy, k[2] + vz
    hn = 1.0 / np.sqrt(hx * hx + hy * hy + hz * hz)
    th = (tx * hx + ty * hy + tz_ * hz) * tn * hn
    kk = np.maximum(1.0 - th * th, 0.0) ** 250.0
    spec = sc.key_i * 0.9 * kk * (lam_key > 0.05)
    # Glossy reflection of the ring light around the lens: bright on flat metal, falls off
    # quickly as a facet tilts, which is what makes dents and bumps stand out.
    ndv = np.maximum(nx * vx + ny * vy + nz * vz, 0.0)
    spec = spec + sc.ring_i * 0.75 * ndv ** 60.0
    spec = spec * spec_w * ao
    lin = alb * (diffuse * ao)[..., None]
    lin = lin + np.where(part, spec, 0.0)[..., None] * (0.55 + 0.45 * sc.metal_rgb)[None, None, :]
    lin = lin * (sc.light_rgb * sc.exposure)[None, None, :] * st.vignette[v0:v1, u0:u1, None]
    color = 255.0 * np.minimum(lin, 1.0) ** _GAMMA

    m = np.zeros(z.shape, dtype=bool)
    if dh is not None:
        # Shading uses normals from 1-pixel differences, so a height change also changes its
        # 8 neighbours' colour: grow the height part of the mask by one pixel.
        m |= _grow1(dh != 0)
    if alb_f is not None:
        m |= alb_f != 1.0
    if stain is not None:
        m |= stain > 0
    m &= part
    return color.astype(np.float32), (m.astype(np.uint8) * 255)


# --- datasets ------------------------------------------------------------------------------------

_SPLIT_OFFSETS = {"train": 0, "test_good": 1_000_000}
_DEFECT_OFFSET = 2_000_000
_PER_BLOCK = 100_000


def split_seeds(split: str, n: int, seed: int = 0, defect: Optional[str] = None) -> list[int]:
    """Scene seeds used by :func:`write_dataset` for one split: ``split`` is ``"train"``,
    ``"test"`` with ``defect=None`` (good test frames) or ``"test"`` with a defect name. Ranges
    never overlap between splits, and a split's seeds do not depend on the other splits' sizes."""
    base = _check_seed(seed) * 10_000_000
    if split == "train":
        off, cap = _SPLIT_OFFSETS["train"], 1_000_000
    elif split == "test" and _check_defect(defect) is None:
        off, cap = _SPLIT_OFFSETS["test_good"], 1_000_000
    elif split == "test":
        # One block per defect type; new types are appended, so old blocks keep their seeds.
        off, cap = _DEFECT_OFFSET + _PER_BLOCK * (ALL_DEFECT_TYPES.index(defect) + 1), _PER_BLOCK
    else:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    if not 0 <= n <= cap:
        raise ValueError(f"{split}/{defect or GOOD_LABEL}: at most {cap} frames, asked for {n}")
    return [base + off + i for i in range(n)]


_POSE_KEYS = ("part_center_camera_m", "part_yaw_deg", "part_height_m", "part_radius_m",
              "table_plane")


def _jsonable(v):
    if isinstance(v, (tuple, list)):
        return [float(x) for x in v]
    return float(v)


def _save_png(path: Path, array: np.ndarray) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    if array.dtype == np.uint16:
        # Explicit 16-bit greyscale ('I;16'), which PIL writes as a 16-bit PNG.
        img = Image.frombytes("I;16", (array.shape[1], array.shape[0]),
                              np.ascontiguousarray(array, dtype="<u2").tobytes())
    else:
        img = Image.fromarray(array)
    img.save(path, compress_level=1)


def write_dataset(root, n_train: int = 200, n_test_good: int = 40, n_test_per_defect: int = 20,
                  seed: int = 0, defects: Iterable[str] = DEFECT_TYPES,
                  intrinsics: CameraIntrinsics = D435_COLOR_640X480,
                  progress: bool = True, *, placement: str = "centered",
                  depth_artifacts: bool = False) -> dict:
    """Render a synthetic RGB-D dataset in the MVTec AD layout::

        <root>/train/good/{rgb,depth}/000000.png
        <root>/test/good/{rgb,depth}/000000.png
        <root>/test/<defect>/{rgb,depth}/000000.png
        <root>/ground_truth/<defect>/000000_mask.png     (8-bit, 255 = defect)
        <root>/ground_truth/poses.json                    (per frame pose, see below)
        <root>/camera_info.json                           (intrinsics, see CameraIntrinsics)

    Colour is 8-bit RGB PNG, depth 16-bit PNG in millimetres (0 = invalid). Seeds come from
    :func:`split_seeds`, so the splits never share a scene. ``defects`` may name any of
    :data:`ALL_DEFECT_TYPES`; ``placement`` and ``depth_artifacts`` go to :func:`render_scene`
    (and are recorded in camera_info.json). poses.json maps ``"<split>/<label>/<stem>"`` to
    the frame's ground truth (part_center_camera_m, part_yaw_deg, part_height_m, part_radius_m,
    table_plane, seed). Returns a summary dict with the counts per split/label. About 50-80 ms
    per frame on one CPU core, mostly PNG encoding.
    """
    placement = _check_placement(placement)
    depth_artifacts = bool(depth_artifacts)
    defects = tuple(defects)
    for dname in defects:
        _check_defect(dname)
        if dname in (None, GOOD_LABEL):
            raise ValueError("defects must name defect types, not 'good'")
    root = Path(root)
    jobs: list[tuple[str, str, int, int]] = []      # (split, label, index, seed)
    for i, s in enumerate(split_seeds("train", n_train, seed)):
        jobs.append(("train", GOOD_LABEL, i, s))
    for i, s in enumerate(split_seeds("test", n_test_good, seed)):
        jobs.append(("test", GOOD_LABEL, i, s))
    for dname in defects:
        for i, s in enumerate(split_seeds("test", n_test_per_defect, seed, dname)):
            jobs.append(("test", dname, i, s))

    root.mkdir(parents=True, exist_ok=True)
    info = dict(intrinsics.to_dict(), depth_units_m=0.001, generator="gan_anomaly_ros.data.synthetic",
                seed=int(seed), placement=placement, depth_artifacts=depth_artifacts)
    (root / "camera_info.json").write_text(json.dumps(info, indent=2) + "\n")

    iterator = track(jobs, total=len(jobs), desc=f"synthetic -> {root}", unit="frame") \
        if progress else jobs
    counts: dict[str, dict[str, int]] = {"train": {}, "test": {}}
    poses: dict[str, dict] = {}
    for split, label, i, s in iterator:
        frame = render_scene(s, None if label == GOOD_LABEL else label, intrinsics,
                             placement=placement, depth_artifacts=depth_artifacts)
        stem = f"{i:06d}"
        poses[f"{split}/{label}/{stem}"] = dict(
            {k: _jsonable(frame.info[k]) for k in _POSE_KEYS}, seed=int(s))
        folder = root / split / label
        _save_png(folder / "rgb" / f"{stem}.png", frame.color)
        _save_png(folder / "depth" / f"{stem}.png", frame.depth_mm)
        if label != GOOD_LABEL:
            _save_png(root / "ground_truth" / label / f"{stem}_mask.png", frame.mask)
        counts[split][label] = counts[split].get(label, 0) + 1
    gt = root / "ground_truth"
    gt.mkdir(parents=True, exist_ok=True)
    (gt / "poses.json").write_text(json.dumps(poses, indent=1) + "\n")
    return {
        "root": str(root),
        "train": counts["train"],
        "test": counts["test"],
        "n_frames": len(jobs),
        "size": [intrinsics.width, intrinsics.height],
    }
