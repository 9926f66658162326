"""Latent-map metrics of the timbre VAE (issues 4 and 18), on a split of held-out instruments.

Notes may come at several velocities and over MIDI 21-108 (the wide dataset). The *reference velocity* is 100 (the
layer with most notes if a split has no 100); the *core* is MIDI 48-72 at the reference velocity (the grid of rounds
1-3). On a cache of one velocity over 48-72 every number below is the one earlier rounds reported.

- V_inst: mean over instruments of the variance of mu over that instrument's pitches (trace of the 2x2 covariance,
  i.e. summed over both axes, population variance), over the reference-velocity notes; small = an instrument stays
  at one point whatever the pitch.
- V_pitch: mean over pitches of the variance of mu across instruments (same trace), grouped by pitch over the
  reference-velocity notes; large = instruments spread out. The ratio V_pitch / V_inst is the disentanglement
  headline (paper: ~1e6; target >= 1e3). ``core_*``: the same three on the core only (comparable to round 1-3's 94).
- spread: std of mu on each axis (notes of the split, and instrument centroids of train); both axes must be used.
- pitch probe: a small MLP trained on TRAIN z -> pitch (all notes), evaluated on the split's z; near chance = no
  pitch in z. ``accuracy`` vs ``chance`` = the share of the split's most frequent pitch (1/25 on the core grid);
  ``balanced_accuracy`` (mean recall over the split's pitches) vs ``balanced_chance`` = 1/pitches, which the wide
  data's unequal pitch counts (the core is denser) do not inflate. ``core_pitch_probe``: trained and measured on the
  core notes only.
- kNN family accuracy: each instrument's point = the centroid of mu over ALL its notes of the split (what the bundle
  places on the pad; ``core_knn_*``: over its core notes), classified by the families of the k nearest training
  instrument points (k = 1 and 5; ties: the nearest). Chance, three ways: ``knn_chance`` = the share of the
  held-out set's majority family; ``knn_chance_uniform`` = 1 / families among the held-out instruments;
  ``knn_chance_permuted_k1/_k5`` = the mean accuracy of the same kNN over 200 random permutations of the training
  instruments' families (a map of these points carrying no family information; the fair baseline).
- fill: the bounding box of all instrument points (train + held-out) gridded at 100 x 100 cell centres; ``fill_share``
  = the share of cells within 0.1 of the box's diagonal of some instrument point (``fill_share_05``: within 0.05).
  A map filling its pad evenly with ~400 instruments scores ~1; points along thin streaks, or a dense clump with a
  few outliers stretching the box, score low.
- velocity (splits with more than one velocity): compared at *matching pitches*, the (instrument, pitch) pairs
  present at two or more velocities. ``V_velocity`` = mean over instruments of the mean over their matching pitches
  of the sample variance (ddof 1, trace) of mu across the velocities; ``velocity_ratio`` = V_velocity / V_inst
  (~1 or more: velocity moves the point as much as pitch does; well below 1: the map is velocity-free).
  ``velocity_shift[v]``: the mean of mu(v) - mu(reference) over matching pitches (a systematic drift of soft or hard
  notes) and the mean distance. ``velocity_probe``: a small MLP on TRAIN z -> velocity layer, class-balanced loss,
  trained and measured on notes of matching pitches only (so each layer has the same pitches and a pitch leak in z
  cannot pass for velocity); ``accuracy`` = balanced accuracy on the split vs ``chance`` = 1 / layers.
- the pitch head (which reads the input embedding, not z) accuracy on the split, for reference.
- a PNG of the map: training notes coloured by family, the family's central instruments shaded (convex hull of the
  80% of its training instruments nearest its median), held-out instruments marked X and named.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from synth.model.data import NoteSet, load_notes, train_instruments
from synth.model.points import centroids, encode_notes
from synth.model.vae import TimbreVAE

REFERENCE_VELOCITY = 100
CORE_PITCHES = (48, 72)  # inclusive: the paper's grid, the core every instrument of the wide dataset keeps
FILL_RADII = (0.1, 0.05)  # fill_share, fill_share_05: fractions of the bounding box's diagonal
FILL_GRID = 100


def variances(mu: np.ndarray, instruments: list[str], pitch: np.ndarray) -> tuple[float, float]:
    """(V_inst, V_pitch), both as the trace of the covariance (sum of per-axis variances, population variance)."""
    names = np.asarray(instruments)
    v_inst = [mu[names == n].var(axis=0).sum() for n in sorted(set(instruments)) if (names == n).sum() > 1]
    v_pitch = [mu[pitch == p].var(axis=0).sum() for p in sorted(set(pitch.tolist())) if (pitch == p).sum() > 1]
    return float(np.mean(v_inst)) if v_inst else float("nan"), float(np.mean(v_pitch)) if v_pitch else float("nan")


def reference_velocity(velocity: np.ndarray) -> int:
    """100 when the notes have it, else their most frequent velocity."""
    vel = np.asarray(velocity).astype(np.int64)
    if len(vel) == 0 or (vel == REFERENCE_VELOCITY).any():
        return REFERENCE_VELOCITY
    return int(Counter(vel.tolist()).most_common(1)[0][0])


def core_mask(pitch: np.ndarray, velocity: np.ndarray, ref: int = REFERENCE_VELOCITY) -> np.ndarray:
    """Notes of the core: MIDI 48-72 at the reference velocity."""
    p, v = np.asarray(pitch), np.asarray(velocity)
    return (p >= CORE_PITCHES[0]) & (p <= CORE_PITCHES[1]) & (v == ref)


def _nearest(train_c: np.ndarray, test_c: np.ndarray, k: int) -> np.ndarray:
    d = ((test_c[:, None, :] - train_c[None, :, :]) ** 2).sum(-1)
    return np.argsort(d, axis=1, kind="stable")[:, :k]


def _vote(nearest: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Majority family of each row's neighbours; ties go to the family of the nearest tied neighbour."""
    pred = []
    for row in nearest:
        counts = Counter(labels[row].tolist())
        best = max(counts.values())
        pred.append(next(int(labels[j]) for j in row if counts[int(labels[j])] == best))
    return np.array(pred, dtype=np.int64)


def knn_family_accuracy(train_c: np.ndarray, train_f: np.ndarray, test_c: np.ndarray, test_f: np.ndarray,
                        k: int) -> float:
    if len(test_c) == 0 or len(train_c) == 0:
        return float("nan")
    return float((_vote(_nearest(train_c, test_c, k), np.asarray(train_f)) == np.asarray(test_f)).mean())


def knn_permuted_chance(train_c: np.ndarray, train_f: np.ndarray, test_c: np.ndarray, test_f: np.ndarray, k: int,
                        permutations: int = 200, seed: int = 0) -> float:
    """Mean kNN family accuracy over random permutations of the training points' families: what a map with these
    points but no family information scores (accounts for the family mix of both sets and for k's majority vote)."""
    if len(test_c) == 0 or len(train_c) == 0:
        return float("nan")
    rng = np.random.default_rng(seed)
    nearest = _nearest(train_c, test_c, k)
    train_f, test_f = np.asarray(train_f), np.asarray(test_f)
    return float(np.mean([(_vote(nearest, rng.permutation(train_f)) == test_f).mean() for _ in range(permutations)]))


def fill_share(points: np.ndarray, radius: float = 0.1, grid: int = FILL_GRID) -> float:
    """Share of the points' bounding box within ``radius`` x (the box's diagonal) of some point: the box gridded at
    ``grid`` x ``grid`` cells, each cell counted by its centre. NaN for fewer than 2 distinct points."""
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    if len(pts) == 0:
        return float("nan")
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    diag = float(np.hypot(*(hi - lo)))
    if diag == 0:
        return float("nan")
    gx = lo[0] + (np.arange(grid) + 0.5) / grid * (hi[0] - lo[0])
    gy = lo[1] + (np.arange(grid) + 0.5) / grid * (hi[1] - lo[1])
    cells = np.stack(np.meshgrid(gx, gy), -1).reshape(-1, 2)
    best = np.full(len(cells), np.inf)
    for s in range(0, len(pts), 256):  # a few grid-sized arrays at a time
        d = ((cells[:, None, :] - pts[None, s : s + 256, :]) ** 2).sum(-1).min(axis=1)
        best = np.minimum(best, d)
    return float((best <= (radius * diag) ** 2).mean())


def fill_measures(points: np.ndarray) -> dict:
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    box = [float(pts[:, 0].min()), float(pts[:, 0].max()), float(pts[:, 1].min()), float(pts[:, 1].max())] \
        if len(pts) else []
    r10, r05 = FILL_RADII
    return {"fill_share": fill_share(pts, r10), "fill_share_05": fill_share(pts, r05), "fill_box": box,
            "fill_points": len(pts)}


def matching_groups(instruments: list[str], pitch: np.ndarray, velocity: np.ndarray) -> list[np.ndarray]:
    """Note indices of each (instrument, pitch) present at two or more distinct velocities, sorted by velocity
    (one note per velocity: the first, if a velocity repeats)."""
    groups: dict[tuple[str, int], dict[int, int]] = {}
    for i, (n, p, v) in enumerate(zip(instruments, np.asarray(pitch).tolist(), np.asarray(velocity).tolist())):
        groups.setdefault((n, int(p)), {}).setdefault(int(v), i)
    return [np.array([g[v] for v in sorted(g)]) for _, g in sorted(groups.items()) if len(g) > 1]


def velocity_variance(mu: np.ndarray, instruments: list[str], pitch: np.ndarray,
                      velocity: np.ndarray) -> tuple[float, int]:
    """(V_velocity, matching groups): mean over instruments of the mean over that instrument's matching pitches of
    the sample variance (ddof 1, trace over both axes) of mu across velocities. NaN without matching pitches."""
    per_inst: dict[str, list[float]] = {}
    groups = matching_groups(instruments, pitch, velocity)
    for g in groups:
        per_inst.setdefault(instruments[g[0]], []).append(float(mu[g].var(axis=0, ddof=1).sum()))
    if not per_inst:
        return float("nan"), 0
    return float(np.mean([np.mean(v) for v in per_inst.values()])), len(groups)


def velocity_shift(mu: np.ndarray, instruments: list[str], pitch: np.ndarray, velocity: np.ndarray,
                   ref: int = REFERENCE_VELOCITY) -> dict:
    """Per velocity v other than ``ref``: the mean offset mu(v) - mu(ref) over matching pitches (dx, dy), the mean
    distance |mu(v) - mu(ref)| and the number of pairs."""
    vel = np.asarray(velocity)
    diffs: dict[int, list[np.ndarray]] = {}
    for g in matching_groups(instruments, pitch, velocity):
        at = {int(vel[i]): i for i in g}
        if ref not in at:
            continue
        for v, i in at.items():
            if v != ref:
                diffs.setdefault(v, []).append(mu[i] - mu[at[ref]])
    out = {}
    for v in sorted(diffs):
        d = np.stack(diffs[v])
        out[str(v)] = {"dx": float(d[:, 0].mean()), "dy": float(d[:, 1].mean()),
                       "distance": float(np.linalg.norm(d, axis=1).mean()), "pairs": len(d)}
    return out


def pitch_probe(train_mu, train_pitch, test_mu, test_pitch, steps: int = 500, seed: int = 0) -> dict:
    """Train a small MLP (2 -> 64 -> 64 -> pitches) on train z, report accuracy on the split and the chance level
    (the most frequent pitch of the split; with 25 equally frequent pitches that is 1/25), plus the balanced
    accuracy (mean recall over the split's pitches) and its chance (1 / pitches)."""
    return _run_probe(train_mu, train_pitch, test_mu, test_pitch, steps, seed, balanced_loss=False)


def velocity_probe(train_mu, train_vel, test_mu, test_vel, steps: int = 500, seed: int = 0) -> dict:
    """A small MLP (2 -> 64 -> 64 -> layers) on train z -> velocity layer with a class-balanced loss; ``accuracy``
    is the balanced accuracy on the split (mean recall over its layers), ``chance`` = 1 / layers;
    ``accuracy_plain`` and ``chance_majority`` (the split's most frequent layer) beside them."""
    res = _run_probe(train_mu, train_vel, test_mu, test_vel, steps, seed, balanced_loss=True)
    return {"accuracy": res["balanced_accuracy"], "chance": res["balanced_chance"],
            "ratio_to_chance": res["balanced_accuracy"] / res["balanced_chance"],
            "train_accuracy": res["train_balanced_accuracy"], "accuracy_plain": res["accuracy"],
            "chance_majority": res["chance"], "layers": res["classes"], "notes": len(test_vel)}


def _run_probe(train_mu, train_y, test_mu, test_y, steps: int, seed: int, balanced_loss: bool) -> dict:
    torch.manual_seed(seed)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny MLP: extra threads only add synchronisation (6x slower on a loaded 2-core box)
    try:
        return _probe(train_mu, train_y, test_mu, test_y, steps, balanced_loss)
    finally:
        torch.set_num_threads(threads)


def _balanced_accuracy(pred: torch.Tensor, y: torch.Tensor) -> float:
    recalls = [float((pred[y == c] == c).float().mean()) for c in torch.unique(y).tolist()]
    return float(np.mean(recalls)) if recalls else float("nan")


def _probe(train_mu, train_y, test_mu, test_y, steps: int, balanced_loss: bool) -> dict:
    classes = sorted(set(np.asarray(train_y).tolist()) | set(np.asarray(test_y).tolist()))
    index = {p: i for i, p in enumerate(classes)}
    xtr = torch.tensor(np.asarray(train_mu), dtype=torch.float32)
    mean, std = xtr.mean(0), xtr.std(0).clamp_min(1e-8)
    ytr = torch.tensor([index[int(p)] for p in train_y])
    xte = (torch.tensor(np.asarray(test_mu), dtype=torch.float32) - mean) / std
    yte = torch.tensor([index[int(p)] for p in test_y])
    net = torch.nn.Sequential(torch.nn.Linear(2, 64), torch.nn.ReLU(), torch.nn.Linear(64, 64), torch.nn.ReLU(),
                              torch.nn.Linear(64, len(classes)))
    weight = None
    if balanced_loss:
        counts = torch.bincount(ytr, minlength=len(classes)).float()
        weight = torch.where(counts > 0, counts.sum() / (len(classes) * counts.clamp_min(1)), torch.zeros(()))
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    xtr = (xtr - mean) / std
    for _ in range(steps):
        loss = F.cross_entropy(net(xtr), ytr, weight=weight)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        pred_te, pred_tr = net(xte).argmax(1), net(xtr).argmax(1)
    acc_test = float((pred_te == yte).float().mean())
    chance = max(Counter(yte.tolist()).values()) / max(1, len(yte))
    n_test_classes = len(set(yte.tolist()))
    return {"accuracy": acc_test, "train_accuracy": float((pred_tr == ytr).float().mean()), "chance": chance,
            "ratio_to_chance": acc_test / chance if chance else float("nan"),
            "balanced_accuracy": _balanced_accuracy(pred_te, yte),
            "balanced_chance": 1.0 / n_test_classes if n_test_classes else float("nan"),
            "train_balanced_accuracy": _balanced_accuracy(pred_tr, ytr), "classes": len(classes)}


def display_name(name: str) -> str:
    """``<font>_<program>_<gm_name>`` -> ``gm name (font)``; other names unchanged."""
    parts = name.split("_")
    if len(parts) >= 3 and parts[1].isdigit() and len(parts[1]) == 3:
        return f"{' '.join(parts[2:])} ({parts[0]})"
    return name


def _family_hull(points: np.ndarray, keep: float = 0.8) -> np.ndarray | None:
    """Vertices of the convex hull of the ``keep`` share of ``points`` nearest their median (None if degenerate)."""
    if len(points) < 3:
        return None
    d = np.linalg.norm(points - np.median(points, axis=0), axis=1)
    core = points[d <= np.quantile(d, keep)] if len(points) >= 5 else points
    try:
        from scipy.spatial import ConvexHull

        hull = ConvexHull(core)
    except Exception:  # fewer than 3 points left, or collinear
        return None
    return core[hull.vertices]


def plot_map(path: str | Path, train_mu, train_fam, test_c, test_f, test_names, family_names, title: str = "",
             train_c=None, train_cf=None) -> None:
    """The map: training notes by family, shaded family regions (hull of the central 80% of each family's training
    instrument points ``train_c``/``train_cf``, when given), held-out instruments as X with their display names."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 8), dpi=110)
    cmap = plt.get_cmap("tab20" if len(family_names) > 10 else "tab10")
    if train_c is not None and train_cf is not None and len(train_c):
        for f in range(len(family_names)):
            hull = _family_hull(np.asarray(train_c)[np.asarray(train_cf) == f])
            if hull is not None:
                ax.fill(hull[:, 0], hull[:, 1], color=cmap(f), alpha=0.10, linewidth=0)
                ax.plot(np.r_[hull[:, 0], hull[:1, 0]], np.r_[hull[:, 1], hull[:1, 1]], color=cmap(f), alpha=0.5,
                        linewidth=0.8)
    for f, name in enumerate(family_names):
        sel = train_fam == f
        if sel.any():
            ax.scatter(train_mu[sel, 0], train_mu[sel, 1], s=4, alpha=0.35, color=cmap(f), label=name)
    for f in range(len(family_names)):
        sel = test_f == f
        if sel.any():
            ax.scatter(test_c[sel, 0], test_c[sel, 1], s=70, marker="X", color=cmap(f), edgecolors="black",
                       linewidths=0.8)
    for (x, y), name in zip(np.asarray(test_c), [] if test_names is None else list(test_names)):
        ax.annotate(display_name(name), (x, y), xytext=(4, 3), textcoords="offset points", fontsize=5.5, alpha=0.85)
    ax.scatter([], [], s=70, marker="X", color="white", edgecolors="black", label="held-out instrument")
    if train_c is not None:
        ax.fill([], [], color="0.5", alpha=0.2, label="family: central 80% of\ntraining instruments")
    circle = plt.Circle((0, 0), 1.0, fill=False, color="0.6", linestyle="--", linewidth=0.8)
    ax.add_patch(circle)
    ax.set_aspect("equal")
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.set_title(title or "timbre map (training notes by family; X = held-out instruments)", fontsize=9)
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, markerscale=2)
    fig.tight_layout()
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)


def _pick(names: list[str], mask: np.ndarray) -> list[str]:
    return [n for n, m in zip(names, mask) if m]


def _ratio(num: float, den: float) -> float:
    if np.isnan(num) or np.isnan(den):
        return float("nan")
    return num / den if den > 0 else float("inf")


def evaluate_latent(vae: TimbreVAE, train: NoteSet, test: NoteSet, png: str | Path | None = None,
                    probe_steps: int = 500) -> dict:
    """All latent metrics for ``test`` (held-out instruments) with ``train`` as reference."""
    mu_tr, _ = encode_notes(vae, train)
    mu_te, head_pred = encode_notes(vae, test)
    p_tr, p_te = train.pitch.numpy(), test.pitch.numpy()
    v_tr, v_te = train.velocity.numpy(), test.velocity.numpy()
    f_tr, f_te = train.family.numpy(), test.family.numpy()
    n_tr, n_te = train.instrument_names, test.instrument_names
    ref = reference_velocity(v_te)
    ref_te, ref_tr = v_te == ref, v_tr == ref
    v_inst, v_pitch = variances(mu_te[ref_te], _pick(n_te, ref_te), p_te[ref_te])
    v_inst_tr, v_pitch_tr = variances(mu_tr[ref_tr], _pick(n_tr, ref_tr), p_tr[ref_tr])
    _, c_tr, cf_tr = centroids(mu_tr, n_tr, f_tr)
    names_te, c_te, cf_te = centroids(mu_te, n_te, f_te)
    spread = mu_te.std(axis=0)
    spread_tr = c_tr.std(axis=0) if len(c_tr) else np.zeros(2)
    probe = pitch_probe(mu_tr, p_tr, mu_te, p_te, steps=probe_steps)
    res = {
        "notes": len(test),
        "instruments": len(names_te),
        "V_inst": v_inst,
        "V_pitch": v_pitch,
        "ratio": _ratio(v_pitch, v_inst),
        "spread_x": float(spread[0]),
        "spread_y": float(spread[1]),
        "spread_ratio": float(min(spread) / max(spread)) if max(spread) > 0 else 0.0,
        "train_centroid_spread_x": float(spread_tr[0]),
        "train_centroid_spread_y": float(spread_tr[1]),
        "max_radius": float(np.linalg.norm(mu_te, axis=1).max()) if len(mu_te) else 0.0,
        "train_V_inst": v_inst_tr,
        "train_V_pitch": v_pitch_tr,
        "train_ratio": _ratio(v_pitch_tr, v_inst_tr),
        "pitch_probe": probe,
        "knn_family_acc_k1": knn_family_accuracy(c_tr, cf_tr, c_te, cf_te, 1),
        "knn_family_acc_k5": knn_family_accuracy(c_tr, cf_tr, c_te, cf_te, 5),
        "knn_chance": max(Counter(cf_te.tolist()).values()) / len(cf_te) if len(cf_te) else float("nan"),
        "pitch_head_acc": float((head_pred == p_te).mean()) if len(p_te) else float("nan"),
        # issue 18 additions
        "knn_chance_uniform": 1.0 / len(set(cf_te.tolist())) if len(cf_te) else float("nan"),
        "knn_chance_permuted_k1": knn_permuted_chance(c_tr, cf_tr, c_te, cf_te, 1),
        "knn_chance_permuted_k5": knn_permuted_chance(c_tr, cf_tr, c_te, cf_te, 5),
        "knn_train_instruments": len(c_tr),
        "pitch_range": [int(p_te.min()), int(p_te.max())] if len(p_te) else [],
        "velocities": sorted(set(v_te.tolist())),
        "reference_velocity": ref,
    }
    res.update(fill_measures(np.concatenate([c_tr, c_te]) if len(c_tr) + len(c_te) else np.zeros((0, 2))))
    res.update(_core_measures(mu_tr, p_tr, v_tr, f_tr, n_tr, mu_te, p_te, v_te, f_te, n_te, ref, res, probe_steps))
    res.update(_velocity_measures(mu_tr, p_tr, v_tr, n_tr, mu_te, p_te, v_te, n_te, ref, v_inst, probe_steps))
    if png:
        title = (f"timbre map: kNN family k=1 {res['knn_family_acc_k1']:.2f} (chance "
                 f"{res['knn_chance_permuted_k1']:.2f}), fill {res['fill_share']:.2f}; X = held-out instruments")
        plot_map(png, mu_tr, f_tr, c_te, cf_te, names_te, train.family_names, title=title, train_c=c_tr, train_cf=cf_tr)
        res["png"] = str(png)
    return res


def _core_measures(mu_tr, p_tr, v_tr, f_tr, n_tr, mu_te, p_te, v_te, f_te, n_te, ref, res, probe_steps) -> dict:
    """V_inst, V_pitch, ratio, pitch probe and kNN on the core notes (MIDI 48-72 at the reference velocity): the
    numbers of rounds 1-3. Copied from the full measures when every note is a core note (nothing to recompute)."""
    core_tr, core_te = core_mask(p_tr, v_tr, ref), core_mask(p_te, v_te, ref)
    keys = ("V_inst", "V_pitch", "ratio", "pitch_probe", "knn_family_acc_k1", "knn_family_acc_k5")
    if core_tr.all() and core_te.all():
        return {"core_notes": int(core_te.sum()), **{f"core_{k}": res[k] for k in keys}}
    if not core_te.any() or not core_tr.any():
        return {"core_notes": int(core_te.sum()), **{f"core_{k}": float("nan") for k in keys}}
    v_inst, v_pitch = variances(mu_te[core_te], _pick(n_te, core_te), p_te[core_te])
    _, c_tr, cf_tr = centroids(mu_tr[core_tr], _pick(n_tr, core_tr), f_tr[core_tr])
    _, c_te, cf_te = centroids(mu_te[core_te], _pick(n_te, core_te), f_te[core_te])
    return {
        "core_notes": int(core_te.sum()),
        "core_V_inst": v_inst,
        "core_V_pitch": v_pitch,
        "core_ratio": _ratio(v_pitch, v_inst),
        "core_pitch_probe": pitch_probe(mu_tr[core_tr], p_tr[core_tr], mu_te[core_te], p_te[core_te],
                                        steps=probe_steps),
        "core_knn_family_acc_k1": knn_family_accuracy(c_tr, cf_tr, c_te, cf_te, 1),
        "core_knn_family_acc_k5": knn_family_accuracy(c_tr, cf_tr, c_te, cf_te, 5),
    }


def _velocity_measures(mu_tr, p_tr, v_tr, n_tr, mu_te, p_te, v_te, n_te, ref, v_inst, probe_steps) -> dict:
    """V_velocity, its ratio to V_inst, the per-layer drift and the velocity probe (None without matching pitches)."""
    v_vel, groups = velocity_variance(mu_te, n_te, p_te, v_te)
    out = {"V_velocity": v_vel, "velocity_ratio": _ratio(v_vel, v_inst), "velocity_groups": groups,
           "velocity_shift": velocity_shift(mu_te, n_te, p_te, v_te, ref), "velocity_probe": None}
    g_te = np.concatenate(matching_groups(n_te, p_te, v_te) or [np.zeros(0, np.int64)])
    g_tr = np.concatenate(matching_groups(n_tr, p_tr, v_tr) or [np.zeros(0, np.int64)])
    if len(g_te) and len(g_tr):
        out["velocity_probe"] = velocity_probe(mu_tr[g_tr], v_tr[g_tr], mu_te[g_te], v_te[g_te], steps=probe_steps)
    return out


def evaluate_run(vae: TimbreVAE, emb_dir: str | Path, split: str = "test", png=None, probe_steps: int = 500) -> dict:
    classes = train_instruments(emb_dir)
    pr = (vae.cfg.pitch_min, vae.cfg.pitch_max)
    train = load_notes(emb_dir, "train", classes, vae.cfg.num_frames, vae.cfg.time_pool, pr)
    test = load_notes(emb_dir, split, classes, vae.cfg.num_frames, vae.cfg.time_pool, pr)
    res = evaluate_latent(vae, train, test, png, probe_steps)
    res["split"] = split
    return res
