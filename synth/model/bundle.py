"""The model bundle: one folder that holds everything the instrument needs to play, verified on load.

Layout (``models/default/``)::

    bundle.json      format version, configs, codec folder, pitch range, sample rate, frames, data summary,
                     latent-map points of the instruments, sha256 + size of every weight file
    vae.pt           TimbreVAE state_dict
    generator.pt     Generator state_dict
    stats.pt         {"mean": [D], "std": [D]} embedding statistics of the training split (tensors only)
    codec/           the codec folder (config.json + codec.pt), loaded by synth.codec.load_codec
    MODEL_CARD.md    how it was trained and what it measures (written by hand)

Only state_dicts and JSON: loading never unpickles code (``torch.load(weights_only=True)``). Every problem found
while loading is a ``BundleError`` that names the file and says what is wrong (missing, truncated, hash mismatch,
bad JSON, version mismatch), so a user with a half-copied folder gets a sentence, not a traceback from torch.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from synth.model.generator import Generator, GeneratorConfig
from synth.model.vae import TimbreVAE, VAEConfig

FORMAT = "pgesam-bundle"
FORMAT_VERSION = 1
BUNDLE_JSON = "bundle.json"
CODEC_FOLDER = "codec"


class BundleError(RuntimeError):
    """A bundle folder cannot be used; the message names the file and the problem."""


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


@dataclass
class ModelBundle:
    path: Path
    info: dict[str, Any]
    codec: Any  # synth.codec.base.Codec
    vae: TimbreVAE
    generator: Generator
    stats: dict[str, np.ndarray]  # mean, std float32 [D]
    pitch_range: tuple[int, int]
    sample_rate: int
    num_frames: int
    hash: str
    instruments: list[dict] = field(default_factory=list)  # name, family, x, y, split

    @property
    def mean(self) -> np.ndarray:
        return self.stats["mean"]

    @property
    def std(self) -> np.ndarray:
        return self.stats["std"]


def _content_hash(files: dict[str, dict]) -> str:
    h = hashlib.sha256()
    for name in sorted(files):
        h.update(f"{name}:{files[name]['sha256']}\n".encode())
    return h.hexdigest()[:12]


def save_bundle(
    out_dir: str | Path,
    codec_dir: str | Path,
    vae: TimbreVAE,
    generator: Generator,
    stats: tuple[np.ndarray, np.ndarray] | dict[str, np.ndarray],
    instruments: list[dict] | None = None,
    data_summary: dict | None = None,
    extra: dict | None = None,
) -> Path:
    """Write a complete bundle folder (the codec folder is copied in); returns the bundle.json path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    codec_src = Path(codec_dir)
    if not (codec_src / "config.json").is_file():
        raise BundleError(f"{codec_src} is not a codec folder (no config.json)")
    codec_dst = out / CODEC_FOLDER
    if codec_src.resolve() != codec_dst.resolve():
        if codec_dst.exists():
            shutil.rmtree(codec_dst)
        shutil.copytree(codec_src, codec_dst)
    mean, std = (stats["mean"], stats["std"]) if isinstance(stats, dict) else stats
    torch.save({k: v.detach().cpu() for k, v in vae.state_dict().items()}, out / "vae.pt")
    torch.save({k: v.detach().cpu() for k, v in generator.state_dict().items()}, out / "generator.pt")
    torch.save(
        {"mean": torch.as_tensor(np.asarray(mean, np.float32)), "std": torch.as_tensor(np.asarray(std, np.float32))},
        out / "stats.pt",
    )
    weight_files = ["vae.pt", "generator.pt", "stats.pt"] + sorted(
        f"{CODEC_FOLDER}/{p.name}" for p in codec_dst.iterdir() if p.is_file()
    )
    files = {name: {"sha256": sha256_file(out / name), "bytes": (out / name).stat().st_size} for name in weight_files}
    codec_cfg = json.loads((codec_dst / "config.json").read_text())
    from synth.codec import load_codec

    codec = load_codec(codec_dst)
    info = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "codec": {"folder": CODEC_FOLDER, "name": codec_cfg.get("name", "codec"), **codec.describe()},
        "sample_rate": int(codec.sample_rate),
        "frame_rate": float(codec.frame_rate),
        "num_frames": int(generator.cfg.num_frames),
        "pitch_range": [int(vae.cfg.pitch_min), int(vae.cfg.pitch_max)],
        "vae_config": json.loads(vae.cfg.to_json()),
        "generator_config": json.loads(generator.cfg.to_json()),
        "data": data_summary or {},
        "instruments": instruments or [],
        "files": files,
        "hash": _content_hash(files),
    }
    if extra:
        info.update(extra)
    path = out / BUNDLE_JSON
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(info, indent=1))
    tmp.replace(path)
    return path


def read_bundle_info(path: str | Path) -> dict:
    """bundle.json, parsed and version-checked (cheap: no weights are read)."""
    folder = Path(path)
    jpath = folder / BUNDLE_JSON
    if not folder.is_dir():
        raise BundleError(f"{folder}: no such bundle folder")
    if not jpath.is_file():
        raise BundleError(f"{jpath}: missing (not a model bundle folder?)")
    try:
        info = json.loads(jpath.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BundleError(f"{jpath}: not valid JSON ({exc})") from None
    if not isinstance(info, dict) or info.get("format") != FORMAT:
        raise BundleError(f"{jpath}: not a {FORMAT} file (format field is {info.get('format') if isinstance(info, dict) else None!r})")
    version = info.get("format_version")
    if version != FORMAT_VERSION:
        raise BundleError(
            f"{jpath}: bundle format version {version!r}, this code reads version {FORMAT_VERSION}"
            + (" (made by a newer version of the synth: update it)" if isinstance(version, int) and version > FORMAT_VERSION else "")
        )
    for key in ("files", "vae_config", "generator_config", "pitch_range", "sample_rate", "num_frames"):
        if key not in info:
            raise BundleError(f"{jpath}: field {key!r} missing")
    return info


def verify_bundle(path: str | Path, info: dict | None = None) -> dict:
    """Check every listed file: present, full size, sha256 as recorded. Returns the info dict."""
    folder = Path(path)
    info = info or read_bundle_info(folder)
    for name, rec in info["files"].items():
        f = folder / name
        if not f.is_file():
            raise BundleError(f"{f}: missing (listed in {BUNDLE_JSON})")
        size = f.stat().st_size
        if "bytes" in rec and size != rec["bytes"]:
            what = "truncated" if size < rec["bytes"] else "larger than recorded"
            raise BundleError(f"{f}: {what} ({size} of {rec['bytes']} bytes); copy the bundle again")
        digest = sha256_file(f)
        if digest != rec["sha256"]:
            raise BundleError(f"{f}: sha256 mismatch (file {digest[:12]}..., bundle.json {rec['sha256'][:12]}...): "
                              "the file was changed or damaged")
    return info


def _load_state(path: Path) -> dict:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise BundleError(f"{path}: cannot be read as a state_dict ({exc})") from None


def load_bundle(path: str | Path, device: str | torch.device | None = None, verify: bool = True) -> ModelBundle:
    """Load and verify a bundle; raises ``BundleError`` with a clear message on any problem."""
    folder = Path(path)
    info = read_bundle_info(folder)
    if verify:
        verify_bundle(folder, info)
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    try:
        vcfg = VAEConfig.from_json(json.dumps(info["vae_config"]))
        gcfg = GeneratorConfig.from_json(json.dumps(info["generator_config"]))
    except TypeError as exc:
        raise BundleError(f"{folder / BUNDLE_JSON}: bad config ({exc})") from None
    vae, gen = TimbreVAE(vcfg), Generator(gcfg)
    for model, name in ((vae, "vae.pt"), (gen, "generator.pt")):
        try:
            model.load_state_dict(_load_state(folder / name))
        except RuntimeError as exc:
            raise BundleError(f"{folder / name}: does not match its config in {BUNDLE_JSON} ({exc})") from None
    st = _load_state(folder / "stats.pt")
    stats = {k: np.asarray(st[k].numpy(), np.float32) for k in ("mean", "std")}
    from synth.codec import load_codec

    codec_dir = folder / info.get("codec", {}).get("folder", CODEC_FOLDER)
    try:
        codec = load_codec(codec_dir, device=device)
    except Exception as exc:
        raise BundleError(f"{codec_dir}: codec cannot be loaded ({exc})") from None
    return ModelBundle(
        path=folder,
        info=info,
        codec=codec,
        vae=vae.to(device).eval(),
        generator=gen.to(device).eval(),
        stats=stats,
        pitch_range=(int(info["pitch_range"][0]), int(info["pitch_range"][1])),
        sample_rate=int(info["sample_rate"]),
        num_frames=int(info["num_frames"]),
        hash=info.get("hash") or _content_hash(info["files"]),
        instruments=list(info.get("instruments", [])),
    )


def build_tiny_bundle(out_dir: str | Path, seed: int = 0, num_frames: int = 24, dim: int = 8,
                      pitch_feature: bool = False, refine_vae: bool = False) -> Path:
    """A complete bundle with tiny random weights (tiny harmonic codec, VAE, generator) for tests of the
    engine and the GUI: loads in well under a second and generates notes in milliseconds. Sounds like nothing."""
    from synth.codec.bundled import CodecConfig, CodecModel, save_codec
    from synth.model.data import families

    out = Path(out_dir)
    torch.manual_seed(seed)
    ccfg = CodecConfig(name="tiny", dim=dim, enc_filters=2, enc_lstm=0, hidden=16, n_blocks=1, n_harmonics=8,
                       n_noise_bands=8, noise_seed=seed, pitch_feature=pitch_feature, pitch_feature_dims=1)
    codec_dir = out / "_codec_src"
    save_codec(CodecModel(ccfg), codec_dir)
    vcfg = VAEConfig(num_frames=num_frames, dim=dim, time_pool=2, enc_channels=(8, 8), pool_bins=2, hidden=16,
                     cls_hidden=8, num_instruments=6, seed=seed)
    gcfg = GeneratorConfig(num_frames=num_frames, dim=dim, d_model=16, n_layers=1, n_heads=2, frames_per_step=4,
                           dropout=0.0, seed=seed, refine_vae=refine_vae)
    vae, gen = TimbreVAE(vcfg).eval(), Generator(gcfg).eval()
    rng = np.random.default_rng(seed)
    fams = families()
    instruments = []
    for i in range(8):
        r, a = 0.9 * np.sqrt(rng.random()), 2 * np.pi * rng.random()
        instruments.append({"name": f"tiny_{fams[i % len(fams)]}_{i}", "family": fams[i % len(fams)],
                            "x": float(r * np.cos(a)), "y": float(r * np.sin(a)),
                            "split": "train" if i < 6 else "test"})
    stats = (np.zeros(dim, np.float32), np.full(dim, 0.5, np.float32))
    save_bundle(out, codec_dir, vae, gen, stats, instruments,
                {"notes": 0, "source": "random weights (build_tiny_bundle)"}, {"tiny": True})
    shutil.rmtree(codec_dir)
    return out
