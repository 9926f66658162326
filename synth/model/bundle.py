"""The model bundle: one folder that holds everything the instrument needs to play, verified on load.

Layout (``models/default/``)::

    bundle.json      format version, configs, codec folder, pitch range, sample rate, frames, data summary,
                     latent-map points of the instruments, sha256 + size of every weight file
    vae.pt           TimbreVAE state_dict
    generator.pt     Generator state_dict
    flow.pt          FlowNet state_dict (the sampling generator, synth.model.flow; only with ``flow_config``)
    stats.pt         {"mean": [D], "std": [D]} embedding statistics of the training split (tensors only)
    codec/           the codec folder (config.json + codec.pt), loaded by synth.codec.load_codec
    MODEL_CARD.md    how it was trained and what it measures (written by hand)

Only state_dicts and JSON: loading never unpickles code (``torch.load(weights_only=True)``). Every problem found
while loading is a ``BundleError`` that names the file and says what is wrong (missing, truncated, hash mismatch,
bad JSON, version mismatch), so a user with a half-copied folder gets a sentence, not a traceback from torch.

Validated completely at load (issue 16), because bundle.json is not signed and may come from anyone:

- bundle.json itself: size, nesting, numbers (``synth.validate.load_json_file``); ``hash`` is 12 lowercase hex
  digits and the hash of the listed files (it names cache folders, so "../x" must never get through); every name in
  ``files`` and the codec folder stay inside the bundle folder (symlinks resolved) and are checked before any file
  is opened; the weights the loader reads are all listed, each with a well-formed sha256; ``num_frames``,
  ``sample_rate``, ``pitch_range``, ``play_path`` and every instrument's name, family, x and y are sane.
- the weights: every tensor finite; stats have a finite mean and a finite, positive std of the codec's dim; the
  configs build networks whose shapes are those of the weight files (built first as an uninitialised shell, under a
  tensor budget from the file, so a config asking for 10^12 parameters costs nothing); a retired experiment
  option (``VAEConfig.RETIRED``, ...) loads only at its off value (``synth.model.configio``);
- a probe: one short note (a quarter second, the map's centre, the middle pitch) through the play path; silent or
  non-finite audio refuses the bundle. It costs a few milliseconds.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import shutil
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import PurePosixPath
from pathlib import Path
from typing import Any

import numpy as np
import torch

from synth.atomic import save_torch
from synth.atomic import UMASK, write_text
from synth.model.configio import RetiredOptionError
from synth.model.generator import Generator, GeneratorConfig
from synth.model.instrument import Instrument, InstrumentError, parse_instruments
from synth.model.vae import TimbreVAE, VAEConfig

FORMAT = "pgesam-bundle"
FORMAT_VERSION = 1
BUNDLE_JSON = "bundle.json"
CODEC_FOLDER = "codec"
WEIGHT_FILES = ("vae.pt", "generator.pt", "stats.pt")  # besides the codec folder's CODEC_FILES
FLOW_FILE = "flow.pt"  # the sampling generator (synth.model.flow), present when bundle.json has flow_config
PLAY_PATHS = ("generator", "vae", "flow")
CODEC_FILES = ("config.json", "codec.pt")  # what synth.codec.bundled.load_bundled reads
MAX_JSON_BYTES = 32 << 20  # the shipped bundle.json is 52 kB (391 instruments)
MAX_NOTE_SECONDS = 60.0  # num_frames beyond this many seconds of audio is refused
MAX_FRAMES = 1 << 14  # when bundle.json gives no frame rate
PROBE_SECONDS = 0.25
PROBE_SILENCE = 1e-4  # peak below -80 dBFS: the probe note is silent
_HASH = re.compile(r"[0-9a-f]{12}")
_SHA256 = re.compile(r"[0-9a-f]{64}")


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
    instruments: tuple[Instrument, ...] = ()  # the map's points (name, family, x, y, split), parsed at load
    flow: Any = None  # synth.model.flow.FlowNet when the bundle has the sampling generator (flow.pt), else None

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
    instruments: list[Instrument | dict] | tuple[Instrument, ...] | None = None,
    data_summary: dict | None = None,
    extra: dict | None = None,
    flow: Any = None,
    half_weights: bool = False,
) -> Path:
    """Write a complete bundle folder (the codec folder is copied in); returns the bundle.json path. ``flow`` (a
    ``synth.model.flow.FlowNet``, its sampling weights) adds ``flow.pt`` and ``flow_config``. ``half_weights``
    stores the two stage-2 networks (generator.pt, flow.pt) as float16 (half the bytes: the repository carries the
    bundle; they load back into float32 modules); a tensor outside float16's range is refused (BundleError)."""
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
    save_torch({k: v.detach().cpu() for k, v in vae.state_dict().items()}, out / "vae.pt")
    save_torch(_stored(generator, half_weights, "generator.pt"), out / "generator.pt")
    save_torch(
        {"mean": torch.as_tensor(np.asarray(mean, np.float32)), "std": torch.as_tensor(np.asarray(std, np.float32))},
        out / "stats.pt",
    )
    if flow is not None:
        save_torch(_stored(flow, half_weights, FLOW_FILE), out / FLOW_FILE)
    elif (out / FLOW_FILE).exists():
        (out / FLOW_FILE).unlink()  # a stale sampler from an earlier build must not ride along unlisted
    weight_files = ["vae.pt", "generator.pt", "stats.pt"] + ([FLOW_FILE] if flow is not None else []) + sorted(
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
        **({"flow_config": json.loads(flow.cfg.to_json())} if flow is not None else {}),
        "velocity_layers": velocity_layers_of(vae, generator, flow),
        "weights_dtype": {"generator.pt": "float16" if half_weights else "float32",
                          **({FLOW_FILE: "float16" if half_weights else "float32"} if flow is not None else {})},
        "data": data_summary or {},
        "instruments": [Instrument.from_json(i).to_json() for i in instruments or ()],
        "files": files,
        "hash": _content_hash(files),
    }
    if extra:
        info.update(extra)
    path = out / BUNDLE_JSON
    write_text(path, json.dumps(info, indent=1), file_mode=UMASK)
    return path


FLOAT16_MAX = 65504.0


def _stored(net: torch.nn.Module, half: bool, name: str) -> dict[str, torch.Tensor]:
    """The state_dict as written: CPU tensors, floating ones as float16 when ``half``."""
    state = {k: v.detach().cpu() for k, v in net.state_dict().items()}
    if not half:
        return state
    for key, tensor in state.items():
        if tensor.is_floating_point():
            peak = float(tensor.abs().max()) if tensor.numel() else 0.0
            if not peak < FLOAT16_MAX:
                raise BundleError(f"{name}: tensor {key!r} reaches {peak:g}, beyond float16's range: store float32")
            state[key] = tensor.half()
    return state


def velocity_layers_of(vae: TimbreVAE, generator: Generator, flow: Any = None) -> list[int]:
    """The velocity layers the bundle's networks tell apart ([100] when none is conditioned on velocity)."""
    for net in (flow, generator, vae):
        cfg = getattr(net, "cfg", None)
        if cfg is not None and (getattr(cfg, "velocity_cond", False) or net is flow):
            return [int(v) for v in cfg.velocity_layers]
    return [100]


def read_bundle_info(path: str | Path) -> dict:
    """bundle.json, parsed and checked in full (cheap: no weight is read; see the module docstring)."""
    folder = Path(path)
    jpath = folder / BUNDLE_JSON
    if not folder.is_dir():
        raise BundleError(f"{folder}: no such bundle folder")
    if not jpath.is_file():
        raise BundleError(f"{jpath}: missing (not a model bundle folder?)")
    from synth.validate import InputError, load_json_file

    try:
        info = load_json_file(jpath, max_bytes=MAX_JSON_BYTES)
    except InputError as exc:
        raise BundleError(str(exc)) from None
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
    _check_files(info, folder, jpath)
    _check_fields(info, jpath)
    _check_instruments(info.get("instruments", []), jpath)
    return info


def _short(value: Any, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _inside(folder: Path, name: Any, jpath: Path, what: str) -> str:
    """``name`` as a normalized relative path that stays inside ``folder`` (symlinks resolved), else BundleError.
    Only names and link targets are looked at: nothing is opened."""
    if not isinstance(name, str) or not name.strip() or "\\" in name or "\x00" in name:
        raise BundleError(f"{jpath}: {what} {_short(name)} is not a relative path inside the bundle folder")
    rel = PurePosixPath(name)
    if rel.is_absolute() or ".." in rel.parts or str(rel) == ".":
        raise BundleError(f"{jpath}: {what} {_short(name)} points outside the bundle folder")
    try:
        inside = (folder / rel).resolve().is_relative_to(folder.resolve())
    except (OSError, RuntimeError):  # a symlink loop
        inside = False
    if not inside:
        raise BundleError(f"{jpath}: {what} {_short(name)} points outside the bundle folder (through a link)")
    return str(rel)


def _codec_folder(info: dict, folder: Path, jpath: Path) -> str:
    codec = info.get("codec", {})
    if not isinstance(codec, dict):
        raise BundleError(f"{jpath}: field 'codec' must be an object with a 'folder'")
    return _inside(folder, codec.get("folder", CODEC_FOLDER), jpath, "field 'codec.folder'")


def _check_files(info: dict, folder: Path, jpath: Path) -> None:
    """Names inside the folder, records well formed, every weight the loader reads listed, ``hash`` right."""
    files = info["files"]
    if not isinstance(files, dict) or not files:
        raise BundleError(f"{jpath}: field 'files' is empty or not an object: it must list every weight file "
                          "with its sha256")
    listed = set()
    for name, rec in files.items():
        listed.add(_inside(folder, name, jpath, "file"))
        if not isinstance(rec, dict) or not isinstance(rec.get("sha256"), str) or not _SHA256.fullmatch(rec["sha256"]):
            raise BundleError(f"{jpath}: field 'files', entry {_short(name)}: needs a 'sha256' of 64 lowercase "
                              "hex digits")
        size = rec.get("bytes", 0)
        if type(size) is not int or size < 0:
            raise BundleError(f"{jpath}: field 'files', entry {_short(name)}: 'bytes' must be a whole number >= 0")
    codec = _codec_folder(info, folder, jpath)
    flow_files = (FLOW_FILE,) if "flow_config" in info else ()
    for need in (*WEIGHT_FILES, *flow_files, *(f"{codec}/{f}" for f in CODEC_FILES)):
        if need not in listed:
            raise BundleError(f"{jpath}: {need} is not listed in field 'files' (every weight file must be listed "
                              "with its sha256)")
    if "hash" in info:
        value, expected = info["hash"], _content_hash(files)
        if not isinstance(value, str) or not _HASH.fullmatch(value):
            raise BundleError(f"{jpath}: field 'hash' must be 12 lowercase hex digits (it names cache folders), "
                              f"not {_short(value)}")
        if value != expected:
            raise BundleError(f"{jpath}: field 'hash' is {value} but the listed files hash to {expected}")


def _number(value: Any, lo: float, hi: float, name: str, whole: bool = False) -> float:
    """A finite number in [lo, hi] (a whole one when ``whole``), else BundleError naming ``name``."""
    from synth.validate import InputError, finite_in_range

    if whole and type(value) is not int:
        raise BundleError(f"{name}: must be a whole number, not {_short(value)}")
    try:
        return finite_in_range(value, lo, hi, name)
    except InputError as exc:
        raise BundleError(str(exc)) from None


def _check_fields(info: dict, jpath: Path) -> None:
    _number(info["sample_rate"], 8000, 384000, f"{jpath}: field 'sample_rate'", whole=True)
    rate = info.get("frame_rate")
    if rate is not None:
        rate = _number(rate, 1e-3, 1e4, f"{jpath}: field 'frame_rate'")
    cap = min(MAX_FRAMES, int(MAX_NOTE_SECONDS * rate)) if rate else MAX_FRAMES
    frames = int(_number(info["num_frames"], 1, cap, f"{jpath}: field 'num_frames'", whole=True))
    for cfg in ("vae_config", "generator_config", *(("flow_config",) if "flow_config" in info else ())):
        if not isinstance(info[cfg], dict):
            raise BundleError(f"{jpath}: field {cfg!r} must be an object")
        if info[cfg].get("num_frames", frames) != frames:
            raise BundleError(f"{jpath}: field 'num_frames' is {frames} but {cfg}.num_frames is "
                              f"{_short(info[cfg]['num_frames'])}")
    pitch = info["pitch_range"]
    if not isinstance(pitch, list) or len(pitch) != 2:
        raise BundleError(f"{jpath}: field 'pitch_range' must be [lowest, highest], not {_short(pitch)}")
    lo, hi = (int(_number(p, 0, 127, f"{jpath}: field 'pitch_range'", whole=True)) for p in pitch)
    if lo > hi:
        raise BundleError(f"{jpath}: field 'pitch_range' {pitch} runs backwards")
    paths = PLAY_PATHS if "flow_config" in info else ("generator", "vae")
    if info.get("play_path", "generator") not in paths:
        raise BundleError(f"{jpath}: field 'play_path' must be one of {', '.join(paths)}"
                          f"{' (flow needs flow_config and flow.pt)' if 'flow_config' not in info else ''}, "
                          f"not {_short(info['play_path'])}")
    if "flow_config" in info and not isinstance(info["flow_config"], dict):
        raise BundleError(f"{jpath}: field 'flow_config' must be an object")
    layers = info.get("velocity_layers", [100])
    if not isinstance(layers, list) or not layers:
        raise BundleError(f"{jpath}: field 'velocity_layers' must be a non-empty list of velocities")
    for v in layers:
        _number(v, 1, 127, f"{jpath}: field 'velocity_layers'", whole=True)


def _check_instruments(instruments: Any, jpath: Path) -> tuple[Instrument, ...]:
    """The map points the GUI draws (``synth.model.instrument``): each needs a name, a family and a finite x, y."""
    if not isinstance(instruments, list):
        raise BundleError(f"{jpath}: field 'instruments' must be a list")
    try:
        return parse_instruments(instruments, f"{jpath}: instruments")
    except InstrumentError as exc:
        raise BundleError(str(exc)) from None


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


def _load_state(path: Path) -> dict[str, torch.Tensor]:
    """A state_dict of finite tensors (weights_only: no code is unpickled)."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise BundleError(f"{path}: cannot be read as a state_dict ({exc})") from None
    if not isinstance(state, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                              for k, v in state.items()):
        raise BundleError(f"{path}: not a state_dict (a mapping of names to tensors)")
    for key, tensor in state.items():
        if (tensor.is_floating_point() or tensor.is_complex()) and not _finite(tensor):
            raise BundleError(f"{path}: tensor {key!r} is not finite (NaN or inf): the weights are damaged")
    return state


def _finite(tensor: torch.Tensor) -> bool:
    # numpy's check runs on one thread: torch's took seconds on a busy 2-core machine (its thread pool contends)
    try:
        return bool(np.isfinite(tensor.detach().cpu().numpy()).all())
    except TypeError:  # bfloat16 and friends have no numpy type
        return bool(torch.isfinite(tensor).all())


def _load_stats(path: Path, dim: int) -> dict[str, np.ndarray]:
    state = _load_state(path)
    stats = {}
    for key in ("mean", "std"):
        if key not in state:
            raise BundleError(f"{path}: field {key!r} missing (the embedding statistics need mean and std)")
        value = np.asarray(state[key].float().numpy(), np.float32)
        if value.shape != (dim,):
            raise BundleError(f"{path}: field {key!r} has shape {value.shape}, the codec's dim is {dim}")
        stats[key] = value
    if not (stats["std"] > 0).all():
        raise BundleError(f"{path}: field 'std' has values <= 0 (at index {int(np.argmin(stats['std']))}): every "
                          "embedding dim needs a positive spread")
    return stats


@contextmanager
def _tensor_budget(limit: int, what: str):
    """Refuse (BundleError) a network that registers more than ``limit`` tensors or modules while it is built in
    this thread: a config asking for 10^6 layers stops at once instead of building them."""
    from torch.nn.modules import module as nn_module

    me, count = threading.get_ident(), [0]

    def hook(*_args):
        if threading.get_ident() == me:
            count[0] += 1
            if count[0] > limit:
                raise BundleError(what)

    handles = [nn_module.register_module_parameter_registration_hook(hook),
               nn_module.register_module_buffer_registration_hook(hook),
               nn_module.register_module_module_registration_hook(hook)]
    try:
        yield
    finally:
        for h in handles:
            h.remove()


class _Shell(torch.overrides.TorchFunctionMode):
    """Builds a network's shell for the shape check: weights are never initialised (random and constant factories
    become ``empty``, ``torch.nn.init`` and in-place initialisers do nothing) and any tensor of more than ``max_numel``
    elements is refused at once (BundleError), before anything computes on it. Thread-local, like every torch
    function mode.

    Why not the meta device (used before): torch runs many meta ops (``x * 0.02``, ``normal_``) through its Python
    reference implementations, which import ``torch._dynamo`` on first use: a cold ``synth render`` of the bench
    file took 4.05-4.31 s with it, 3.72-3.76 s without (issue 19). ``empty`` leaves untouched pages unallocated, so a
    config asking for a huge tensor costs nothing before it is refused; a tensor larger than all the weights together
    cannot match them."""

    INIT_METHODS = frozenset({"normal_", "uniform_", "zero_", "fill_", "random_", "bernoulli_", "exponential_",
                              "log_normal_", "cauchy_", "geometric_", "copy_"})
    AS_EMPTY = {torch.randn: torch.empty, torch.rand: torch.empty, torch.zeros: torch.empty, torch.ones: torch.empty,
                torch.randn_like: torch.empty_like, torch.rand_like: torch.empty_like,
                torch.zeros_like: torch.empty_like, torch.ones_like: torch.empty_like}

    def __init__(self, max_numel: int, what: str):
        super().__init__()
        self.max_numel, self.what = max_numel, what

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if getattr(func, "__module__", None) == "torch.nn.init" or getattr(func, "__name__", "") in self.INIT_METHODS:
            return args[0] if args else kwargs["tensor"]
        if func in self.AS_EMPTY:
            kwargs.pop("generator", None)
            func = self.AS_EMPTY[func]
        elif func in (torch.full, torch.full_like):
            func, args = (torch.empty if func is torch.full else torch.empty_like), args[:1]
            kwargs.pop("fill_value", None)
        out = func(*args, **kwargs)
        if isinstance(out, torch.Tensor) and out.numel() > self.max_numel:
            raise BundleError(self.what)
        return out


def _build(cls, cfg_cls, info: dict, field_name: str, state: dict, path: Path, jpath: Path):
    """The network ``field_name`` describes, checked against its weights first as an uninitialised shell (cheap)."""
    too_big = f"{jpath}: field {field_name!r} describes a network larger than {path.name} holds"
    try:
        cfg = cfg_cls.from_json(json.dumps(info[field_name]))
        numel = sum(int(v.numel()) for v in state.values())
        with _tensor_budget(4 * len(state) + 64, too_big), _Shell(numel + (1 << 20), too_big):
            shell = cls(cfg)
    except BundleError:
        raise
    except RetiredOptionError as exc:  # a retired experiment switched on: the model would play differently
        raise BundleError(f"{jpath}: field {field_name!r}: {exc}") from None
    except Exception as exc:
        raise BundleError(f"{jpath}: field {field_name!r} does not build a network ({type(exc).__name__}: "
                          f"{_short(str(exc), 200)})") from None
    expected = {k: tuple(v.shape) for k, v in shell.state_dict().items()}
    if expected != {k: tuple(v.shape) for k, v in state.items()}:
        missing = sorted(set(expected) - set(state))[:3]
        raise BundleError(f"{path}: does not match its config in {BUNDLE_JSON} field {field_name!r} (keys or "
                          f"shapes differ{'; missing ' + ', '.join(missing) if missing else ''})")
    model = cls(cfg)
    model.load_state_dict(state)
    return model


def _load_codec(folder: Path, info: dict, jpath: Path, device: torch.device, dim: int | None = None):
    from synth.codec import load_codec

    codec_dir = folder / _codec_folder(info, folder, jpath)
    state = _load_state(codec_dir / CODEC_FILES[1])  # finite weights, and the size of the network to expect
    too_big = f"{codec_dir / CODEC_FILES[0]}: describes a codec larger than {CODEC_FILES[1]} holds"
    try:
        with _tensor_budget(4 * len(state) + 64, too_big):
            codec = load_codec(codec_dir, device=device)
    except BundleError:
        raise
    except Exception as exc:
        raise BundleError(f"{codec_dir}: codec cannot be loaded ({_short(str(exc), 300)})") from None
    if int(codec.sample_rate) != int(info["sample_rate"]):
        raise BundleError(f"{jpath}: field 'sample_rate' is {info['sample_rate']} but the codec plays at "
                          f"{codec.sample_rate} Hz")
    if not (math.isfinite(float(codec.frame_rate)) and codec.frame_rate > 0):
        raise BundleError(f"{codec_dir / CODEC_FILES[0]}: frame rate {codec.frame_rate} is not a positive number")
    return codec


def load_bundle(path: str | Path, device: str | torch.device | None = None, verify: bool = True,
                probe: bool = True) -> ModelBundle:
    """Load and verify a bundle; raises ``BundleError`` with a clear message on any problem (module docstring).
    ``probe`` False skips the one-note probe (tools that only read the map or the VAE)."""
    folder = Path(path)
    jpath = folder / BUNDLE_JSON
    info = read_bundle_info(folder)
    if verify:
        verify_bundle(folder, info)
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    vae = _build(TimbreVAE, VAEConfig, info, "vae_config", _load_state(folder / "vae.pt"), folder / "vae.pt", jpath)
    gen = _build(Generator, GeneratorConfig, info, "generator_config", _load_state(folder / "generator.pt"),
                 folder / "generator.pt", jpath)
    flow = None
    if "flow_config" in info:
        from synth.model.flow import FlowConfig, FlowNet

        flow = _build(FlowNet, FlowConfig, info, "flow_config", _load_state(folder / FLOW_FILE), folder / FLOW_FILE,
                      jpath)
    codec = _load_codec(folder, info, jpath, device)
    stats = _load_stats(folder / "stats.pt", int(codec.dim))
    nets = (("vae_config", vae.cfg), ("generator_config", gen.cfg), *((("flow_config", flow.cfg),) if flow is not None else ()))
    for name, cfg in nets:
        if int(getattr(cfg, "dim", codec.dim)) != int(codec.dim):
            raise BundleError(f"{jpath}: field '{name}.dim' is {cfg.dim} but the codec's dim is {codec.dim}")
    bundle = ModelBundle(
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
        instruments=parse_instruments(info.get("instruments", [])),  # checked by read_bundle_info
        flow=flow.to(device).eval() if flow is not None else None,
    )
    if probe:
        probe_bundle(bundle)
    return bundle


def probe_bundle(bundle: ModelBundle) -> float:
    """Play one short note (PROBE_SECONDS at the map's centre, the middle pitch) through the bundle's play path and
    refuse the bundle (BundleError) when it is silent or not finite. Returns the note's peak."""
    from synth.model.generator import generate_frames

    jpath = bundle.path / BUNDLE_JSON
    frame_rate = float(getattr(bundle.codec, "frame_rate", 0) or bundle.info.get("frame_rate") or 75.0)
    frames = max(1, min(bundle.num_frames, math.ceil(PROBE_SECONDS * frame_rate)))
    xs = [i.x for i in bundle.instruments] or [0.0]
    ys = [i.y for i in bundle.instruments] or [0.0]
    x, y = sum(xs) / len(xs), sum(ys) / len(ys)
    pitch = (bundle.pitch_range[0] + bundle.pitch_range[1]) // 2
    path = str(bundle.info.get("play_path", "generator"))
    device = next(bundle.generator.parameters()).device
    z = torch.tensor([[x, y]], dtype=torch.float32, device=device)
    p = torch.tensor([pitch], device=device)
    mean = torch.as_tensor(bundle.mean, device=device)
    std = torch.as_tensor(bundle.std, device=device)
    note = f"the probe note (MIDI {pitch} at ({x:.2f}, {y:.2f}), {path} path)"
    threads = torch.get_num_threads()
    try:
        # one thread: a note this short gains nothing from more, and a busy machine's pool took seconds for it
        torch.set_num_threads(1)
        with torch.inference_mode():
            if path == "vae":
                emb = bundle.vae.decode(z, p)[:, :frames]
            elif path == "flow":  # non-causal over the whole note: sample it all, few steps, keep the start
                emb = bundle.flow.generate(z, p, steps=2, guidance=1.0)[:, :frames]
            else:
                emb = generate_frames(bundle.generator, bundle.vae, z, p, frames)
            wave = bundle.codec.decode(emb.float() * std + mean).float().cpu().numpy()
    except Exception as exc:
        raise BundleError(f"{jpath}: {note} failed: {type(exc).__name__}: {_short(str(exc), 200)}") from None
    finally:
        torch.set_num_threads(threads)
    if not np.isfinite(wave).all():
        raise BundleError(f"{jpath}: {note} is not finite audio (NaN or inf): the weights are broken")
    peak = float(np.abs(wave).max()) if wave.size else 0.0
    if peak < PROBE_SILENCE:
        raise BundleError(f"{jpath}: {note} came out silent (peak {peak:.1e}): these weights make no sound")
    return peak


def build_tiny_bundle(out_dir: str | Path, seed: int = 0, num_frames: int = 24, dim: int = 8,
                      pitch_feature: bool = False, refine_vae: bool = False, flow: bool = False,
                      half_weights: bool = False) -> Path:
    """A complete bundle with tiny random weights (tiny harmonic codec, VAE, generator; with ``flow`` also a tiny
    flow sampler, played by default) for tests of the engine and the GUI: loads in well under a second and
    generates notes in milliseconds. Sounds like nothing."""
    from synth.codec.bundled import CodecConfig, CodecModel, save_codec
    from synth.data.families import FAMILIES

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
    fams = tuple(FAMILIES)
    instruments = []
    for i in range(8):
        r, a = 0.9 * np.sqrt(rng.random()), 2 * np.pi * rng.random()
        instruments.append({"name": f"tiny_{fams[i % len(fams)]}_{i}", "family": fams[i % len(fams)],
                            "x": float(r * np.cos(a)), "y": float(r * np.sin(a)),
                            "split": "train" if i < 6 else "test"})
    stats = (np.zeros(dim, np.float32), np.full(dim, 0.5, np.float32))
    flow_net = None
    if flow:
        from synth.model.flow import FlowConfig, FlowNet

        fcfg = FlowConfig(num_frames=num_frames, dim=dim, pitch_min=vcfg.pitch_min, pitch_max=vcfg.pitch_max,
                          patch=4, d_model=16, n_layers=1, n_heads=2, sample_steps=2, seed=seed, context_frames=8,
                          context_min=4, context_max=12, context_shift_max=8)
        flow_net = FlowNet(fcfg).eval()
    save_bundle(out, codec_dir, vae, gen, stats, instruments,
                {"notes": 0, "source": "random weights (build_tiny_bundle)"},
                {"tiny": True, **({"play_path": "flow"} if flow else {})}, flow=flow_net, half_weights=half_weights)
    shutil.rmtree(codec_dir)
    return out
