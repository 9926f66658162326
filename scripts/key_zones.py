"""How much of the VAE's within-instrument spread (V_inst) comes from SoundFont key zones.

A SoundFont instrument plays a different recorded sample in each key zone, so two notes of one "instrument" may be
two different recordings. This reads the zones of every (font, program) of the dataset from the .sf2 files and
splits V_inst into a within-zone part (one sample, resampled) and a between-zone part, next to the eval's ratio.

    pip install sf2utils   # analysis only; not a dependency of the synth
    python scripts/key_zones.py --vae runs/vae/default --split test

Prints JSON. Fonts sf2utils cannot read (the .sf3 MuseScore fonts) are skipped and named in the output.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys

import numpy as np


def _in_range(key_range, key: int) -> bool:
    return key_range is None or key_range[0] <= key <= key_range[1]


def font_zones(path: str, pitches: range, velocity: int = 100) -> dict[int, dict[int, str]]:
    """{program: {pitch: names of the samples that sound, joined}} for bank 0 of one font."""
    from sf2utils.sf2parse import Sf2File

    zones: dict[int, dict[int, str]] = {}
    with open(path, "rb") as f:
        for preset in Sf2File(f).presets:
            if getattr(preset, "bank", None) != 0:
                continue
            by_pitch = {}
            for key in pitches:
                names = {
                    ib.sample.name
                    for pb in preset.bags
                    if pb.instrument is not None and _in_range(pb.key_range, key) and _in_range(pb.velocity_range, velocity)
                    for ib in pb.instrument.bags
                    if ib.sample is not None and _in_range(ib.key_range, key) and _in_range(ib.velocity_range, velocity)
                }
                by_pitch[key] = "|".join(sorted(names))
            zones[preset.preset] = by_pitch
    return zones


def zone_split(mu: np.ndarray, instruments: list[str], pitch: np.ndarray, zones: dict) -> dict:
    """V_inst split into within-zone and between-zone parts over the instruments whose zones are known."""
    from synth.eval.latent import variances

    names = np.asarray(instruments)
    _, v_pitch = variances(mu, instruments, pitch)  # over all the split's instruments, as in the eval
    total, within, count = [], [], []
    for inst in sorted(set(instruments)):
        key = "_".join(inst.split("_")[:2])  # <font>_<program>
        if key not in zones:
            continue
        sel = np.where(names == inst)[0]
        zid = np.array([zones[key][int(pitch[i])] for i in sel])
        m = mu[sel]
        dev = np.concatenate([m[zid == z] - m[zid == z].mean(0) for z in set(zid)])
        total.append(m.var(0).sum())
        within.append((dev**2).sum(1).mean())
        count.append(len(set(zid)))
    total, within, count = np.array(total), np.array(within), np.array(count)
    one = count == 1
    return {
        "instruments_with_zones": int(len(total)),
        "V_pitch": v_pitch,
        "V_inst": float(total.mean()),
        "ratio": v_pitch / float(total.mean()),
        "V_within_zone": float(within.mean()),
        "ratio_within_zone": v_pitch / float(within.mean()),
        "share_of_V_inst_between_zones": 1.0 - float(within.mean() / total.mean()),
        "zones_per_instrument_median": float(np.median(count)),
        "single_zone_instruments": int(one.sum()),
        "ratio_single_zone_instruments": v_pitch / float(total[one].mean()) if one.any() else None,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vae", default="runs/vae/default")
    parser.add_argument("--emb", default="data/emb/default")
    parser.add_argument("--split", action="append", default=None, help="splits (default: test and train)")
    args = parser.parse_args()
    try:
        import sf2utils  # noqa: F401
    except ImportError:
        print("this analysis reads SoundFont zones with sf2utils: pip install sf2utils", file=sys.stderr)
        return 2
    import torch

    from synth.data.render import discover_fonts
    from synth.model.points import encode_notes
    from synth.model.data import load_notes, train_instruments
    from synth.model.vae import load_vae

    torch.set_num_threads(1)
    logging.disable(logging.WARNING)  # sf2utils warns about every odd loop point
    vae = load_vae(args.vae)
    pitches = range(vae.cfg.pitch_min, vae.cfg.pitch_max + 1)
    zones, unreadable = {}, {}
    for font in discover_fonts():
        try:
            for program, by_pitch in font_zones(font.path, pitches).items():
                zones[f"{font.short}_{program:03d}"] = by_pitch
        except Exception as exc:  # sf2utils does not parse every font (sf3)
            unreadable[font.short] = repr(exc)
    classes = train_instruments(args.emb)
    out = {"vae": args.vae, "unreadable_fonts": unreadable}
    for split in args.split or ["test", "train"]:
        notes = load_notes(args.emb, split, classes, vae.cfg.num_frames, vae.cfg.time_pool, (pitches[0], pitches[-1]))
        mu, _ = encode_notes(vae, notes)
        out[split] = zone_split(mu, notes.instrument_names, notes.pitch.numpy(), zones)
    print(json.dumps(out, indent=1, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
