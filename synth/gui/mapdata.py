"""The latent map as the pad draws it: instrument points with readable names, family colours, nearest neighbours,
family regions (rounded convex hulls of each family's core), the view that fits the map."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable

import numpy as np

from synth.model.instrument import Instrument

# A qualitative palette (Tableau 20, dark shades first): families keep their colour across runs by sorted name.
PALETTE = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    "#bcbd22", "#17becf", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94",
)


# The SoundFonts the bundled data comes from, by the short names of ``synth.data.render`` (``<font>_<program>_<gm>``).
FONT_NAMES = {
    "fluidr3": "FluidR3", "fluidr3mono": "FluidR3 Mono", "opl3": "OPL3 FM", "timgm6mb": "TimGM6mb",
    "csound": "Csound", "msglite": "MuseScore Lite", "msgfull": "MuseScore General", "msgeneral": "MuseScore General",
}
NSYNTH_SOURCES = ("acoustic", "electronic", "synthetic")
_UPPER_WORDS = {"fx", "sfx", "gm", "fm", "opl3"}
HELD_OUT_TEXT = "not in training"  # instruments of the validation/test splits: the model never heard them


@dataclass(frozen=True)
class MapPoint:
    name: str
    family: str
    x: float
    y: float
    held_out: bool

    @property
    def label(self) -> str:
        return display_name(self.name)


def _words(text: str) -> str:
    return " ".join(w.upper() if w in _UPPER_WORDS else w[:1].upper() + w[1:] for w in text.split("_") if w)


def display_name(name: str) -> str:
    """A dataset ID as a musician reads it: ``fluidr3mono_094_pad_halo`` -> ``Pad Halo (FluidR3 Mono)``; NSynth's
    ``keyboard_acoustic_004`` -> ``Keyboard Acoustic 004 (NSynth)``; anything else with its underscores spaced."""
    match = re.fullmatch(r"([a-z0-9]+)_(\d{3})_([a-z0-9_]+)", name)
    if match:
        font, _, words = match.groups()
        return f"{_words(words)} ({FONT_NAMES.get(font, font)})"
    match = re.fullmatch(r"([a-z_]+)_(acoustic|electronic|synthetic)_(\d{3})", name)
    if match:
        return f"{_words(name)} (NSynth)"
    return _words(name) or name


def family_label(family: str) -> str:
    """``synth_lead`` -> ``Synth lead``."""
    text = family.replace("_", " ").strip()
    return text[:1].upper() + text[1:]


def to_map_points(instruments: Iterable[Instrument]) -> list[MapPoint]:
    """The pad's points of the bundle's instruments (``synth.model.instrument.Instrument``, parsed at load)."""
    return [MapPoint(i.name, i.family, i.x, i.y, i.held_out) for i in instruments or ()]


def family_colours(points: Iterable[MapPoint]) -> dict[str, str]:
    families = sorted({p.family for p in points})
    return {family: PALETTE[i % len(PALETTE)] for i, family in enumerate(families)}


def bounds(points: list[MapPoint], margin: float = 0.06) -> tuple[float, float, float, float]:
    """(xmin, xmax, ymin, ymax) around the points, each axis widened by ``margin`` of its own span (the pad stretches
    the map to its shape, so the dots use its space); a square around 0 for an empty map."""
    if not points:
        return (-3.0, 3.0, -3.0, 3.0)
    xs = np.array([p.x for p in points])
    ys = np.array([p.y for p in points])
    floor = 0.05 * max(float(np.ptp(xs)), float(np.ptp(ys)), 0.2)  # a map that is one line still gets some height
    pad_x = max(float(np.ptp(xs)), floor) * margin + (floor if np.ptp(xs) < floor else 0.0)
    pad_y = max(float(np.ptp(ys)), floor) * margin + (floor if np.ptp(ys) < floor else 0.0)
    return (float(xs.min() - pad_x), float(xs.max() + pad_x), float(ys.min() - pad_y), float(ys.max() + pad_y))


def nearest(points: list[MapPoint], x: float, y: float, count: int = 3) -> list[tuple[MapPoint, float]]:
    if not points:
        return []
    xy = np.array([(p.x, p.y) for p in points])
    distance = np.hypot(xy[:, 0] - x, xy[:, 1] - y)
    order = np.argsort(distance)[:count]
    return [(points[i], float(distance[i])) for i in order]


def family_regions(points: list[MapPoint], core: float = 0.6, min_points: int = 3,
                   roundness: float = 0.025) -> dict[str, np.ndarray]:
    """Per family of the training instruments, a polygon ``[k, 2]`` around its central part: the convex hull of the
    ``core`` fraction of its points nearest its median (strays would make every region cover the whole map),
    rounded by ``roundness`` of the map's span. Families with fewer than ``min_points`` points get none."""
    train = [p for p in points if not p.held_out]
    if not train:
        return {}
    xy_all = np.array([(p.x, p.y) for p in train])
    radius = roundness * max(float(np.ptp(xy_all[:, 0])), float(np.ptp(xy_all[:, 1])), 1e-3)
    angles = np.linspace(0, 2 * np.pi, 12, endpoint=False)
    ring = radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    regions = {}
    for family in sorted({p.family for p in train}):
        xy = np.array([(p.x, p.y) for p in train if p.family == family])
        if len(xy) < min_points:
            continue
        distance = np.hypot(*(xy - np.median(xy, axis=0)).T)
        keep = max(min_points, int(np.ceil(core * len(xy))))
        kept = xy[np.argsort(distance, kind="stable")[:keep]]
        regions[family] = convex_hull((kept[:, None, :] + ring[None, :, :]).reshape(-1, 2))
    return regions


def convex_hull(xy: np.ndarray) -> np.ndarray:
    """Counter-clockwise hull of points ``[n, 2]`` (Andrew's monotone chain)."""
    pts = sorted(set(map(tuple, np.asarray(xy, dtype=float))))
    if len(pts) < 3:
        return np.array(pts)

    def half(sequence):
        chain: list[tuple[float, float]] = []
        for p in sequence:
            while len(chain) >= 2 and _cross(chain[-2], chain[-1], p) <= 0:
                chain.pop()
            chain.append(p)
        return chain

    lower, upper = half(pts), half(reversed(pts))
    return np.array(lower[:-1] + upper[:-1])


def _cross(o, a, b) -> float:
    return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])


def region_image(
    points: list[MapPoint], colours: dict[str, str], extent: tuple[float, float, float, float],
    size: int = 160, alpha: int = 40,
) -> np.ndarray | None:
    """RGBA image [row=y, col=x] colouring each cell by its nearest family centroid (training points only)."""
    train = [p for p in points if not p.held_out]
    if not train:
        return None
    families = sorted({p.family for p in train})
    centroids = np.array([_centroid(train, family) for family in families])
    xmin, xmax, ymin, ymax = extent
    gx, gy = np.meshgrid(np.linspace(xmin, xmax, size), np.linspace(ymin, ymax, size))
    best = np.full(gx.size, np.inf)
    owner = np.zeros(gx.size, dtype=np.intp)
    for index, (cx, cy) in enumerate(centroids):  # one family at a time keeps memory at a few grid-sized arrays
        distance = (gx.ravel() - cx) ** 2 + (gy.ravel() - cy) ** 2
        closer = distance < best
        best[closer] = distance[closer]
        owner[closer] = index
    rgb = np.array([_rgb(colours[f]) for f in families], dtype=np.uint8)
    image = np.empty((size * size, 4), dtype=np.uint8)
    image[:, :3] = rgb[owner]
    image[:, 3] = alpha
    return image.reshape(size, size, 4)


def _centroid(points: list[MapPoint], family: str) -> tuple[float, float]:
    xy = np.array([(p.x, p.y) for p in points if p.family == family])
    return float(xy[:, 0].mean()), float(xy[:, 1].mean())


def _rgb(colour: str) -> tuple[int, int, int]:
    colour = colour.lstrip("#")
    return tuple(int(colour[i : i + 2], 16) for i in (0, 2, 4))
