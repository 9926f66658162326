"""The latent map as the pad draws it: instrument points, family colours, nearest neighbours, family regions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import numpy as np

# A qualitative palette (Tableau 20, dark shades first): families keep their colour across runs by sorted name.
PALETTE = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    "#bcbd22", "#17becf", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94",
)


@dataclass(frozen=True)
class MapPoint:
    name: str
    family: str
    x: float
    y: float
    held_out: bool


def to_map_points(instruments: Iterable) -> list[MapPoint]:
    """Accepts (name, family, x, y, split) tuples, dicts or objects with those attributes."""
    points = []
    for item in instruments or ():
        if isinstance(item, dict):
            name, family, x, y = item["name"], item["family"], item["x"], item["y"]
            split = item.get("split", "train")
        elif hasattr(item, "family"):
            name, family, x, y = item.name, item.family, item.x, item.y
            split = getattr(item, "split", "train")
        else:
            name, family, x, y, *rest = item
            split = rest[0] if rest else "train"
        points.append(MapPoint(str(name), str(family), float(x), float(y), split not in ("train", "", None)))
    return points


def family_colours(points: Iterable[MapPoint]) -> dict[str, str]:
    families = sorted({p.family for p in points})
    return {family: PALETTE[i % len(PALETTE)] for i, family in enumerate(families)}


def bounds(points: list[MapPoint], margin: float = 0.15) -> tuple[float, float, float, float]:
    """(xmin, xmax, ymin, ymax) around the points with a margin; a unit square around 0 for an empty map."""
    if not points:
        return (-3.0, 3.0, -3.0, 3.0)
    xs = np.array([p.x for p in points])
    ys = np.array([p.y for p in points])
    span = max(float(np.ptp(xs)), float(np.ptp(ys)), 1e-3)
    pad = span * margin
    return (xs.min() - pad, xs.max() + pad, ys.min() - pad, ys.max() + pad)


def nearest(points: list[MapPoint], x: float, y: float, count: int = 3) -> list[tuple[MapPoint, float]]:
    if not points:
        return []
    xy = np.array([(p.x, p.y) for p in points])
    distance = np.hypot(xy[:, 0] - x, xy[:, 1] - y)
    order = np.argsort(distance)[:count]
    return [(points[i], float(distance[i])) for i in order]


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
