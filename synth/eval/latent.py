"""Latent-map metrics of the timbre VAE (issue 4), on a split of held-out instruments.

- V_inst: mean over instruments of the variance of mu over that instrument's pitches (trace of the 2x2 covariance,
  i.e. summed over both axes); small = an instrument stays at one point whatever the pitch.
- V_pitch: mean over pitches of the variance of mu across instruments (same trace); large = instruments spread out.
  The ratio V_pitch / V_inst is the disentanglement headline (paper: ~1e6; target >= 1e3).
- spread: std of mu on each axis (notes of the split, and instrument centroids of train); both axes must be used.
- pitch probe: a small MLP trained on TRAIN z -> pitch, evaluated on the split's z; near chance = no pitch in z.
- kNN family accuracy: each held-out instrument's centroid, classified by the families of the k nearest training
  instrument centroids (k = 1 and 5).
- the pitch head (which reads the input embedding, not z) accuracy on the split, for reference.
- a PNG of the map: training notes coloured by family, held-out instruments marked.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from synth.model.data import NoteSet, load_notes, train_instruments
from synth.model.vae import TimbreVAE


@torch.no_grad()
def encode_notes(vae: TimbreVAE, notes: NoteSet, chunk: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """(mu [N, 2], pitch-head predictions [N] in MIDI) for notes in the VAE's prepared layout."""
    vae.eval()
    mus, preds = [], []
    for i in range(0, len(notes), chunk):
        xp = notes.x[i : i + chunk].float()
        mus.append(vae.encode_prepped(xp)[0])
        preds.append(vae.pitch_head(xp).argmax(1) + vae.cfg.pitch_min)
    return torch.cat(mus).numpy(), torch.cat(preds).numpy()


def variances(mu: np.ndarray, instruments: list[str], pitch: np.ndarray) -> tuple[float, float]:
    """(V_inst, V_pitch), both as the trace of the covariance (sum of per-axis variances, population variance)."""
    names = np.asarray(instruments)
    v_inst = [mu[names == n].var(axis=0).sum() for n in sorted(set(instruments)) if (names == n).sum() > 1]
    v_pitch = [mu[pitch == p].var(axis=0).sum() for p in sorted(set(pitch.tolist())) if (pitch == p).sum() > 1]
    return float(np.mean(v_inst)) if v_inst else float("nan"), float(np.mean(v_pitch)) if v_pitch else float("nan")


def centroids(mu: np.ndarray, instruments: list[str], family: np.ndarray) -> tuple[list[str], np.ndarray, np.ndarray]:
    names = sorted(set(instruments))
    arr = np.asarray(instruments)
    cents = np.stack([mu[arr == n].mean(axis=0) for n in names]) if names else np.zeros((0, 2))
    fams = np.array([family[arr == n][0] for n in names], dtype=np.int64)
    return names, cents, fams


def knn_family_accuracy(train_c: np.ndarray, train_f: np.ndarray, test_c: np.ndarray, test_f: np.ndarray, k: int) -> float:
    if len(test_c) == 0 or len(train_c) == 0:
        return float("nan")
    d = ((test_c[:, None, :] - train_c[None, :, :]) ** 2).sum(-1)
    nearest = np.argsort(d, axis=1)[:, :k]
    pred = []
    for row in nearest:
        counts = Counter(train_f[row].tolist())
        best = max(counts.values())
        pred.append(next(int(train_f[j]) for j in row if counts[int(train_f[j])] == best))  # ties: the nearest
    return float((np.array(pred) == test_f).mean())


def pitch_probe(train_mu, train_pitch, test_mu, test_pitch, steps: int = 500, seed: int = 0) -> dict:
    """Train a small MLP (2 -> 64 -> 64 -> pitches) on train z, report accuracy on the split and the chance level
    (the most frequent pitch of the split; with 25 equally frequent pitches that is 1/25)."""
    torch.manual_seed(seed)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny MLP: extra threads only add synchronisation (6x slower on a loaded 2-core box)
    try:
        return _pitch_probe(train_mu, train_pitch, test_mu, test_pitch, steps)
    finally:
        torch.set_num_threads(threads)


def _pitch_probe(train_mu, train_pitch, test_mu, test_pitch, steps: int) -> dict:
    pitches = sorted(set(np.asarray(train_pitch).tolist()) | set(np.asarray(test_pitch).tolist()))
    index = {p: i for i, p in enumerate(pitches)}
    xtr = torch.tensor(train_mu, dtype=torch.float32)
    mean, std = xtr.mean(0), xtr.std(0).clamp_min(1e-8)
    ytr = torch.tensor([index[int(p)] for p in train_pitch])
    xte = (torch.tensor(test_mu, dtype=torch.float32) - mean) / std
    yte = torch.tensor([index[int(p)] for p in test_pitch])
    net = torch.nn.Sequential(torch.nn.Linear(2, 64), torch.nn.ReLU(), torch.nn.Linear(64, 64), torch.nn.ReLU(),
                              torch.nn.Linear(64, len(pitches)))
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    xtr = (xtr - mean) / std
    for _ in range(steps):
        loss = F.cross_entropy(net(xtr), ytr)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        acc_test = float((net(xte).argmax(1) == yte).float().mean())
        acc_train = float((net(xtr).argmax(1) == ytr).float().mean())
    chance = max(Counter(yte.tolist()).values()) / max(1, len(yte))
    return {"accuracy": acc_test, "train_accuracy": acc_train, "chance": chance,
            "ratio_to_chance": acc_test / chance if chance else float("nan")}


def plot_map(path: str | Path, train_mu, train_fam, test_c, test_f, test_names, family_names, title: str = "") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 7), dpi=110)
    cmap = plt.get_cmap("tab20" if len(family_names) > 10 else "tab10")
    for f, name in enumerate(family_names):
        sel = train_fam == f
        if sel.any():
            ax.scatter(train_mu[sel, 0], train_mu[sel, 1], s=4, alpha=0.35, color=cmap(f), label=name)
    for f in range(len(family_names)):
        sel = test_f == f
        if sel.any():
            ax.scatter(test_c[sel, 0], test_c[sel, 1], s=70, marker="X", color=cmap(f), edgecolors="black",
                       linewidths=0.8)
    ax.scatter([], [], s=70, marker="X", color="white", edgecolors="black", label="held-out instrument")
    circle = plt.Circle((0, 0), 1.0, fill=False, color="0.6", linestyle="--", linewidth=0.8)
    ax.add_patch(circle)
    ax.set_aspect("equal")
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.set_title(title or "timbre map (training notes by family; X = held-out instruments)")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, markerscale=2)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def evaluate_latent(vae: TimbreVAE, train: NoteSet, test: NoteSet, png: str | Path | None = None,
                    probe_steps: int = 500) -> dict:
    """All latent metrics for ``test`` (held-out instruments) with ``train`` as reference."""
    mu_tr, _ = encode_notes(vae, train)
    mu_te, head_pred = encode_notes(vae, test)
    p_tr, p_te = train.pitch.numpy(), test.pitch.numpy()
    f_tr, f_te = train.family.numpy(), test.family.numpy()
    v_inst, v_pitch = variances(mu_te, test.instrument_names, p_te)
    v_inst_tr, v_pitch_tr = variances(mu_tr, train.instrument_names, p_tr)
    _, c_tr, cf_tr = centroids(mu_tr, train.instrument_names, f_tr)
    names_te, c_te, cf_te = centroids(mu_te, test.instrument_names, f_te)
    spread = mu_te.std(axis=0)
    spread_tr = c_tr.std(axis=0) if len(c_tr) else np.zeros(2)
    res = {
        "notes": len(test),
        "instruments": len(names_te),
        "V_inst": v_inst,
        "V_pitch": v_pitch,
        "ratio": v_pitch / v_inst if v_inst > 0 else float("inf"),
        "spread_x": float(spread[0]),
        "spread_y": float(spread[1]),
        "spread_ratio": float(min(spread) / max(spread)) if max(spread) > 0 else 0.0,
        "train_centroid_spread_x": float(spread_tr[0]),
        "train_centroid_spread_y": float(spread_tr[1]),
        "max_radius": float(np.linalg.norm(mu_te, axis=1).max()) if len(mu_te) else 0.0,
        "train_V_inst": v_inst_tr,
        "train_V_pitch": v_pitch_tr,
        "train_ratio": v_pitch_tr / v_inst_tr if v_inst_tr > 0 else float("inf"),
        "pitch_probe": pitch_probe(mu_tr, p_tr, mu_te, p_te, steps=probe_steps),
        "knn_family_acc_k1": knn_family_accuracy(c_tr, cf_tr, c_te, cf_te, 1),
        "knn_family_acc_k5": knn_family_accuracy(c_tr, cf_tr, c_te, cf_te, 5),
        "knn_chance": max(Counter(cf_te.tolist()).values()) / len(cf_te) if len(cf_te) else float("nan"),
        "pitch_head_acc": float((head_pred == p_te).mean()) if len(p_te) else float("nan"),
    }
    if png:
        plot_map(png, mu_tr, f_tr, c_te, cf_te, names_te, train.family_names)
        res["png"] = str(png)
    return res


def evaluate_run(vae: TimbreVAE, emb_dir: str | Path, split: str = "test", png=None, probe_steps: int = 500) -> dict:
    classes = train_instruments(emb_dir)
    pr = (vae.cfg.pitch_min, vae.cfg.pitch_max)
    train = load_notes(emb_dir, "train", classes, vae.cfg.num_frames, vae.cfg.time_pool, pr)
    test = load_notes(emb_dir, split, classes, vae.cfg.num_frames, vae.cfg.time_pool, pr)
    res = evaluate_latent(vae, train, test, png, probe_steps)
    res["split"] = split
    return res
