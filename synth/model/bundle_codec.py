"""Give a built bundle a new decoder: swap its codec folder for one whose *encoder* is the same.

Why: a codec fine-tuned behind its frozen encoder (``synth codec train --init-codec ... --freeze-encoder``) writes
the very embedding the bundle's VAE, generators and statistics were trained on, so it can replace the bundle's
codec without retraining anything; only the sound of the decoded notes changes. The swap refuses a codec whose
encoder side differs in any weight, buffer or setting (that one needs the whole pipeline rebuilt), rewrites the file
hashes and the bundle hash (disk caches keyed by the old hash are then not served), and loads the result with the
one-note probe before it reports success. If anything fails, the bundle is left as it was.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import torch

from synth.atomic import UMASK, write_text
from synth.model.bundle import (BUNDLE_JSON, BundleError, CODEC_FOLDER, _content_hash, load_bundle, read_bundle_info,
                                sha256_file)

DECODER_PREFIX = "decoder."
# Codec settings that only the decoder reads: they may differ between the two folders.
DECODER_FIELDS = {"name", "hidden", "n_blocks", "n_harmonics", "n_noise_bands", "noise_seed", "noise_init_db",
                  "amp_correction_db", "fine_env", "dec_filters", "dec_lstm", "midi_min", "midi_max",
                  "f0_bins_per_semitone", "onset_fill", "harm_prior"}


def encoder_difference(old_dir: Path, new_dir: Path) -> str | None:
    """None when ``new_dir``'s codec encodes exactly like ``old_dir``'s, else what differs (for the error)."""
    from synth.codec.bundled import load_bundled

    old, new = load_bundled(old_dir), load_bundled(new_dir)
    old_cfg, new_cfg = dataclasses.asdict(old.config), dataclasses.asdict(new.config)
    fields = sorted(k for k in old_cfg if k not in DECODER_FIELDS and old_cfg[k] != new_cfg.get(k))
    if fields:
        return f"encoder settings differ: {', '.join(fields)}"
    a, b = old.model.state_dict(), new.model.state_dict()
    enc_a = {k for k in a if not k.startswith(DECODER_PREFIX)}
    enc_b = {k for k in b if not k.startswith(DECODER_PREFIX)}
    if enc_a != enc_b:
        return f"encoder tensors differ in name: {sorted(enc_a ^ enc_b)[:5]}"
    changed = [k for k in sorted(enc_a) if a[k].shape != b[k].shape or not torch.equal(a[k], b[k])]
    if changed:
        return f"{len(changed)} encoder tensors differ (e.g. {changed[0]})"
    return None


def replace_codec(bundle_dir: str | Path, codec_dir: str | Path, onset_fill: bool | None = None) -> dict:
    """Swap ``bundle_dir``'s codec files for ``codec_dir``'s (same encoder); returns {old_hash, hash, codec}.
    ``onset_fill`` True/False sets the copied codec's decoding rule (``CodecConfig.onset_fill``: no weights change;
    None keeps the folder's): the shipped v6.3 decoder was trained without it and plays with it (CODEC_CARD.md)."""
    bundle_dir, codec_dir = Path(bundle_dir), Path(codec_dir)
    info = read_bundle_info(bundle_dir)
    current = bundle_dir / info.get("codec", {}).get("folder", CODEC_FOLDER)
    if current.resolve() != (bundle_dir / CODEC_FOLDER).resolve():
        raise BundleError(f"{bundle_dir / BUNDLE_JSON}: codec folder is not '{CODEC_FOLDER}'")
    why = encoder_difference(current, codec_dir)
    if why is not None:
        raise BundleError(f"{codec_dir}: not a decoder for {bundle_dir}'s embedding ({why}); rebuild the bundle "
                          "with scripts/train_default.sh instead")
    backup = bundle_dir / ".codec.old"
    json_backup = bundle_dir / ".bundle.json.old"
    shutil.rmtree(backup, ignore_errors=True)
    shutil.copytree(current, backup)
    shutil.copy2(bundle_dir / BUNDLE_JSON, json_backup)
    try:
        # the codec is the folder's top-level files (what save_bundle lists); sub-folders (the card's examples and
        # training curves) stay
        for path in current.iterdir():
            if path.is_file():
                path.unlink()
        for path in sorted(codec_dir.iterdir()):
            if path.is_file() and not path.name.endswith(".tmp"):
                shutil.copy2(path, current / path.name)
        if onset_fill is not None:
            cfg = json.loads((current / "config.json").read_text())
            write_text(current / "config.json", json.dumps({**cfg, "onset_fill": bool(onset_fill)}, indent=2) + "\n",
                       file_mode=UMASK)
        files = {k: v for k, v in info["files"].items() if not k.startswith(CODEC_FOLDER + "/")}
        for path in sorted(p for p in current.iterdir() if p.is_file()):
            name = f"{CODEC_FOLDER}/{path.name}"
            files[name] = {"sha256": sha256_file(path), "bytes": path.stat().st_size}
        codec_cfg = json.loads((current / "config.json").read_text())
        new_info = {**info, "files": files, "hash": _content_hash(files),
                    "codec": {**info["codec"], "name": codec_cfg.get("name", "codec")}}
        write_text(bundle_dir / BUNDLE_JSON, json.dumps(new_info, indent=1), file_mode=UMASK)
        load_bundle(bundle_dir, device="cpu")  # hashes, weights and the one-note probe
    except BaseException:
        shutil.rmtree(current, ignore_errors=True)
        backup.rename(current)
        json_backup.replace(bundle_dir / BUNDLE_JSON)
        raise
    shutil.rmtree(backup, ignore_errors=True)
    json_backup.unlink(missing_ok=True)
    return {"bundle": str(bundle_dir), "old_hash": info.get("hash"), "hash": new_info["hash"],
            "codec": new_info["codec"]["name"]}
