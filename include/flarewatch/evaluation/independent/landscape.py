"""Land-cover backgrounds with spatial structure: TOA reflectance (B8A, B11, B12) of the ground.

Cover types and their typical reflectances (B8A, B11, B12) are textbook spectral shapes: green
vegetation bright in NIR and dark in SWIR (water absorption), bare soil and sand rising from NIR
to SWIR with B12 a little below B11, asphalt dark and flat, metal roofs and white tanks bright and
spectrally flat (B12/B11 ~ 1), water nearly black in SWIR. Spatial structure: 1/f^beta fractal
fields (FFT-filtered noise), dune ripples, Voronoi crop fields with sharp edges and field margins,
centre-pivot circles, a rotated street grid for towns, straight/kinked roads, well pads.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

# (B8A, B11, B12) TOA reflectance of cover types (assumed typical values, see module docstring).
COVER = {
    "sand": (0.36, 0.50, 0.44),
    "dry_soil": (0.28, 0.36, 0.31),
    "steppe": (0.27, 0.31, 0.24),
    "forest": (0.30, 0.16, 0.075),
    "grass": (0.38, 0.24, 0.12),
    "crop_green": (0.44, 0.22, 0.10),
    "crop_senescent": (0.30, 0.33, 0.25),
    "bare_field": (0.24, 0.32, 0.28),
    "wet_soil": (0.18, 0.20, 0.15),
    "asphalt": (0.11, 0.13, 0.12),
    "concrete": (0.30, 0.33, 0.31),
    "tile_roof": (0.33, 0.42, 0.38),
    "caliche_pad": (0.42, 0.52, 0.47),
    "water": (0.015, 0.006, 0.003),
    "tundra": (0.24, 0.17, 0.10),
}
BIOMES = ("desert", "steppe", "vegetation", "cropland", "urban", "tundra")


@dataclass
class Landscape:
    rho: np.ndarray  # float32 (3, H, W) ground TOA reflectance
    water: np.ndarray  # bool (H, W)
    biome: str
    roofs: list = field(default_factory=list)  # dicts: row, col, bbox, kind, rho (3,)
    pads: list = field(default_factory=list)  # (row, col) centres of well pads / plant yards


def fractal(rng: np.random.Generator, shape: tuple[int, int], beta: float, stretch: float = 1.0,
            angle: float = 0.0) -> np.ndarray:
    """Zero-mean, unit-std random field with power spectrum ~ 1/f^beta (optionally anisotropic)."""
    h, w = shape
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.rfftfreq(w)[None, :]
    ca, sa = math.cos(angle), math.sin(angle)
    u, v = fx * ca + fy * sa, (-fx * sa + fy * ca) * stretch
    f = np.sqrt(u * u + v * v)
    f[0, 0] = 1.0
    spec = (rng.standard_normal(f.shape) + 1j * rng.standard_normal(f.shape)) * f ** (-beta / 2.0)
    spec[0, 0] = 0.0
    out = np.fft.irfft2(spec, s=shape)
    return ((out - out.mean()) / (out.std() + 1e-12)).astype(np.float32)


def _paint(rho: np.ndarray, mask: np.ndarray, cover, jitter: float, rng) -> None:
    vals = np.asarray(cover, dtype=np.float32) * np.float32(1.0 + jitter * rng.standard_normal())
    for b in range(3):
        rho[b][mask] = vals[b]


def _textured(rng, shape, cover, amp: float, beta: float = 2.6, **kw) -> np.ndarray:
    base = np.asarray(cover, dtype=np.float32)[:, None, None]
    tex = fractal(rng, shape, beta, **kw)
    # Texture changes brightness mostly, the spectral shape a little (moisture / cover fraction).
    tint = fractal(rng, shape, 3.0) * 0.35 * amp
    out = base * (1.0 + amp * tex)[None]
    out[1:] *= (1.0 - tint)[None]
    return out


def _desert(rng, shape) -> np.ndarray:
    rho = _textured(rng, shape, COVER["sand"], 0.10, beta=3.0)
    h, w = shape
    ang = rng.uniform(0, math.pi)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    phase = (xx * math.cos(ang) + yy * math.sin(ang)) / rng.uniform(6, 18)
    ripples = np.sin(2 * math.pi * (phase + 0.8 * fractal(rng, shape, 3.4)))
    rho *= (1.0 + rng.uniform(0.02, 0.07) * ripples)[None]
    wadi = fractal(rng, shape, 3.6, stretch=4.0, angle=rng.uniform(0, math.pi)) > 1.6
    rho[:, wadi] = np.asarray(COVER["dry_soil"], np.float32)[:, None] * np.float32(rng.uniform(0.8, 1.0))
    return rho


def _steppe(rng, shape) -> np.ndarray:
    rho = _textured(rng, shape, COVER["steppe"], 0.12, beta=2.4)
    shrubs = fractal(rng, shape, 1.2) > 1.3
    rho[:, shrubs] = 0.5 * rho[:, shrubs] + 0.5 * np.asarray(COVER["grass"], np.float32)[:, None]
    return rho


def _vegetation(rng, shape) -> np.ndarray:
    rho = _textured(rng, shape, COVER["forest"], 0.15, beta=2.2)
    clear = fractal(rng, shape, 3.2) > 1.0
    grass = _textured(rng, shape, COVER["grass"], 0.10)
    rho[:, clear] = grass[:, clear]
    return rho


def _tundra(rng, shape) -> np.ndarray:
    rho = _textured(rng, shape, COVER["tundra"], 0.14, beta=2.8)
    ponds = fractal(rng, shape, 2.0) > 2.2
    rho[:, ponds] = np.asarray(COVER["water"], np.float32)[:, None] * 3.0
    return rho


def _cropland(rng, shape) -> np.ndarray:
    h, w = shape
    n = int(rng.integers(25, 90))
    seeds = rng.uniform(0, [h, w], size=(n, 2))
    yy, xx = np.mgrid[0:h, 0:w]
    pts = np.column_stack([yy.ravel() + 0.5, xx.ravel() + 0.5])
    d, lab = cKDTree(seeds).query(pts, k=2)
    lab = lab[:, 0].reshape(shape)
    edge = (d[:, 1] - d[:, 0]).reshape(shape) < 1.0
    kinds = ("crop_green", "crop_senescent", "bare_field", "wet_soil", "grass")
    probs = np.array([0.35, 0.2, 0.25, 0.08, 0.12])
    rho = np.zeros((3, h, w), np.float32)
    field_kind = rng.choice(len(kinds), size=n, p=probs)
    gain = rng.uniform(0.85, 1.15, size=n)
    for b in range(3):
        table = np.array([COVER[kinds[k]][b] for k in field_kind]) * gain
        rho[b] = table[lab]
    rho *= (1.0 + 0.03 * fractal(rng, shape, 1.5))[None]  # within-field texture
    for _ in range(int(rng.integers(0, 6))):  # centre pivots
        r, c, rad = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(15, 40)
        disk = (yy + 0.5 - r) ** 2 + (xx + 0.5 - c) ** 2 < rad * rad
        _paint(rho, disk, COVER["crop_green"], 0.1, rng)
    _paint(rho, edge, COVER["grass"], 0.05, rng)  # field margins
    return rho


def _urban(rng, shape, roofs: list) -> np.ndarray:
    h, w = shape
    rho = _textured(rng, shape, COVER["concrete"], 0.2, beta=1.0)
    ang = rng.uniform(0, math.pi / 2)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    u = xx * math.cos(ang) + yy * math.sin(ang)
    v = -xx * math.sin(ang) + yy * math.cos(ang)
    block = rng.uniform(6, 12)
    streets = ((u % block) < 1.0) | ((v % block) < 1.0)
    table = rng.integers(0, 5, size=(64, 64))  # each block's cover, drawn per block
    kind = table[np.floor(u / block).astype(np.int64) % 64, np.floor(v / block).astype(np.int64) % 64]
    for k, cover in enumerate(("concrete", "tile_roof", "grass", "concrete", "dry_soil")):
        _paint(rho, (kind == k) & ~streets, COVER[cover], 0.1, rng)
    _paint(rho, streets, COVER["asphalt"], 0.05, rng)
    _add_roofs(rng, rho, roofs, int(rng.integers(6, 20)), "urban")
    return rho


def _add_roofs(rng, rho: np.ndarray, roofs: list, n: int, context: str, near=None) -> None:
    """Bright, spectrally flat metal roofs and white storage tanks (B12/B11 ~ 0.95-1.05)."""
    h, w = rho.shape[1:]
    for _ in range(n):
        if near is None:
            r, c = rng.uniform(6, h - 6), rng.uniform(6, w - 6)
        else:
            r = float(np.clip(near[0] + rng.normal(0, 5), 4, h - 4))
            c = float(np.clip(near[1] + rng.normal(0, 5), 4, w - 4))
        level = rng.uniform(0.35, 0.95) if rng.random() > 0.15 else rng.uniform(0.9, 1.4)  # some specular
        flat = np.array([rng.uniform(0.92, 1.05), 1.0, rng.uniform(0.95, 1.05)]) * level
        if rng.random() < 0.5:  # tank: a disk 0.6-2 px radius
            rad = rng.uniform(0.6, 2.0)
            yy, xx = np.ogrid[0:h, 0:w]
            mask = (yy + 0.5 - r) ** 2 + (xx + 0.5 - c) ** 2 <= rad * rad
            kind = "tank"
        else:  # roof: a rectangle 1-4 x 1-6 px
            dh, dw = rng.uniform(1, 4), rng.uniform(1, 6)
            mask = np.zeros((h, w), bool)
            mask[int(r - dh / 2):int(math.ceil(r + dh / 2)), int(c - dw / 2):int(math.ceil(c + dw / 2))] = True
            kind = "metal_roof"
        if not mask.any():
            continue
        for b in range(3):
            rho[b][mask] = flat[b]
        rr, cc = np.nonzero(mask)
        roofs.append({"row": float(rr.mean() + 0.5), "col": float(cc.mean() + 0.5), "kind": kind, "context": context,
                      "bbox": [int(rr.min()), int(cc.min()), int(rr.max()) + 1, int(cc.max()) + 1],
                      "rho": [float(x) for x in flat], "b12_b11": float(flat[2] / flat[1])})


def _line(rho: np.ndarray, r0, c0, r1, c1, cover, width: float = 1.0) -> None:
    h, w = rho.shape[1:]
    n = int(max(abs(r1 - r0), abs(c1 - c0)) * 2) + 2
    rr = np.clip(np.linspace(r0, r1, n), 0, h - 1).astype(int)
    cc = np.clip(np.linspace(c0, c1, n), 0, w - 1).astype(int)
    mask = np.zeros((h, w), bool)
    mask[rr, cc] = True
    if width > 1.5:
        mask = ndimage.binary_dilation(mask)
    for b in range(3):
        rho[b][mask] = rho[b][mask] * 0.3 + 0.7 * cover[b]


def make_landscape(rng: np.random.Generator, shape: tuple[int, int]) -> Landscape:
    """A scene background: a primary biome, a second one blended in, water, roads, pads, roofs."""
    builders = {"desert": _desert, "steppe": _steppe, "vegetation": _vegetation, "cropland": _cropland,
                "tundra": _tundra}
    h, w = shape
    roofs: list = []
    biome = str(rng.choice(BIOMES, p=[0.25, 0.22, 0.13, 0.2, 0.08, 0.12]))
    rho = _urban(rng, shape, roofs) if biome == "urban" else builders[biome](rng, shape)
    if rng.random() < 0.5:  # a second cover type in large soft-edged regions
        other = str(rng.choice([b for b in builders if b != biome]))
        mix = np.clip((fractal(rng, shape, 3.8) - 0.6) * 1.5, 0, 1)[None]
        rho = rho * (1 - mix) + builders[other](rng, shape) * mix
    if biome != "urban" and rng.random() < 0.15:  # a town patch
        town = np.zeros(shape, bool)
        r, c, s = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(40, 120)
        town[int(max(r - s, 0)):int(r + s), int(max(c - s, 0)):int(c + s)] = True
        town_roofs: list = []
        rho[:, town] = _urban(rng, shape, town_roofs)[:, town]
        roofs.extend(r for r in town_roofs if town[int(r["row"]), int(r["col"])])
    water = np.zeros(shape, bool)
    if rng.random() < 0.3:  # sea/lake with a fractal shore, or a river
        if rng.random() < 0.6:
            ramp = np.linspace(-1, 1, w)[None, :] * rng.choice([-1, 1])
            if rng.random() < 0.5:
                ramp = ramp.T
            water = (ramp * rng.uniform(2, 4) + fractal(rng, shape, 3.6) * 0.8 + rng.uniform(-1.5, 1.5)) > 0
        else:
            water = np.abs(fractal(rng, shape, 3.8, stretch=6, angle=rng.uniform(0, math.pi))) < rng.uniform(0.03, 0.08)
        wat = _textured(rng, shape, COVER["water"], 0.2, beta=2.0)
        rho[:, water] = wat[:, water]
    for _ in range(int(rng.integers(1, 5))):  # roads
        r0, c0 = rng.uniform(0, h), 0.0
        r1, c1 = rng.uniform(0, h), float(w)
        if rng.random() < 0.5:
            r0, c0, r1, c1 = c0, r0, c1, r1
        cover = COVER["asphalt"] if rng.random() < 0.5 else COVER["caliche_pad"]
        _line(rho, r0, c0, r1, c1, cover, width=rng.choice([1.0, 2.0]))
    pads = []
    for _ in range(int(rng.integers(3, 14))):  # well pads (5-7 px caliche squares) and yards
        r, c = rng.uniform(12, h - 12), rng.uniform(12, w - 12)
        if water[int(r), int(c)] and rng.random() < 0.7:
            continue  # offshore platforms are rarer
        s = rng.uniform(2, 4)
        m = np.zeros(shape, bool)
        m[int(r - s):int(r + s), int(c - s):int(c + s)] = True
        _paint(rho, m, COVER["caliche_pad"] if not water[int(r), int(c)] else COVER["concrete"], 0.12, rng)
        pads.append((float(r), float(c)))
        if rng.random() < 0.3:
            _add_roofs(rng, rho, roofs, int(rng.integers(1, 5)), "plant", near=(r, c))
        if rng.random() < 0.5:  # access road
            _line(rho, r, c, r + rng.uniform(-80, 80), c + rng.uniform(-80, 80), COVER["caliche_pad"])
    if rng.random() < 0.35:
        _add_roofs(rng, rho, roofs, int(rng.integers(1, 6)), "isolated")
    np.clip(rho, 0.001, None, out=rho)
    return Landscape(rho=rho.astype(np.float32), water=water, biome=biome, roofs=roofs, pads=pads)
