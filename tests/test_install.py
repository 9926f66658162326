"""Installable (issue 20): a wheel of this checkout carries the bundled model and the factory presets, and its
commands (``pgesam-synth``, ``synth``) play that model from a folder far from any checkout.

The slow test builds the wheel from a copy of the sources, and again through an sdist (nothing is written into the
checkout; no build isolation and ``--no-index``, so nothing is downloaded), installs it with ``pip install --target`` (torch and friends come from
this interpreter's environment, not reinstalled) and runs, from an empty temporary folder, the app's offscreen smoke
test and a ``synth render`` of a three-note MIDI file. Both must use the installed bundle (which load_bundle
hash-checks), not the checkout's.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from synth.resources import SHARE_DIR, default_bundle, factory_presets_dir

ROOT = Path(__file__).resolve().parents[1]
BUNDLE_FILES = {"bundle.json", "vae.pt", "generator.pt", "flow.pt", "stats.pt", "codec/config.json", "codec/codec.pt"}


def test_checkout_resources_and_the_links_the_wheel_follows():
    """In a checkout the resolver names the checkout's folders; the package-data links point at the same folders
    (a clone without symlink support would ship text files instead of the model)."""
    assert default_bundle() == ROOT / "models" / "default"
    assert factory_presets_dir() == ROOT / "presets"
    for link, target in ((SHARE_DIR / "models" / "default", ROOT / "models" / "default"),
                         (SHARE_DIR / "presets", ROOT / "presets")):
        assert link.is_symlink() and link.resolve() == target.resolve(), f"{link} should link to {target}"
    assert (SHARE_DIR / "models" / "default" / "bundle.json").is_file()


def _source_copy(dest: Path) -> Path:
    """The files a build of the checkout reads, copied (symlinks kept as links, resolving inside the copy)."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    dest.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, dest / name)
    shutil.copytree(ROOT / "synth", dest / "synth", symlinks=True, ignore=ignore)
    shutil.copytree(ROOT / "models" / "default", dest / "models" / "default")
    shutil.copytree(ROOT / "presets", dest / "presets")
    return dest


def _pip(*args: str, cwd: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "pip", "--disable-pip-version-check", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.slow
def test_installed_wheel_plays_the_bundled_model_from_any_folder(tmp_path):
    import numpy as np
    import soundfile as sf

    src = _source_copy(tmp_path / "src")
    _pip("wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", str(tmp_path / "dist"), str(src), cwd=src)
    (wheel,) = (tmp_path / "dist").glob("pgesam_synth-*.whl")
    # sdist -> wheel (what `python -m build` does): the sdist holds the linked files themselves, so the same wheel
    sdist = subprocess.run([sys.executable, "-c", "import sys; from setuptools import build_meta as b; "
                            "print(b.build_sdist(sys.argv[1]))", str(tmp_path / "sdist")], cwd=src,
                           capture_output=True, text=True, timeout=180)
    assert sdist.returncode == 0, sdist.stderr
    with tarfile.open(tmp_path / "sdist" / sdist.stdout.split()[-1]) as tar:
        tar.extractall(tmp_path / "unpacked", filter="data")
    (unpacked,) = (tmp_path / "unpacked").iterdir()
    _pip("wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", str(tmp_path / "dist2"), str(unpacked),
         cwd=unpacked)
    (wheel2,) = (tmp_path / "dist2").glob("pgesam_synth-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert names == set(zipfile.ZipFile(wheel2).namelist()), "a wheel built through the sdist holds other files"
    shipped = "synth/_share/models/default/"
    assert {shipped + f for f in BUNDLE_FILES} <= names, "the wheel lacks files of the bundled model"
    assert {"synth/_share/presets/" + p.name for p in (ROOT / "presets").glob("*.json")} <= names
    assert not [n for n in names if "/examples/" in n or n.endswith((".wav", ".png"))], "examples are not shipped"
    assert wheel.stat().st_size < 30 << 20

    site = tmp_path / "site"
    _pip("install", "--no-deps", "--no-index", "--target", str(site), str(wheel), cwd=tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path / "home"), "XDG_CONFIG_HOME": str(tmp_path / "config"),
           "XDG_CACHE_HOME": str(tmp_path / "cache"), "PYTHONPATH": str(site), "QT_QPA_PLATFORM": "offscreen",
           "JACK_NO_START_SERVER": "1", "SYNTH_NOTE_CACHE": "off",  # cache off: render loads (and checks) the model
           "COLUMNS": "500"}  # --help on one line per option

    def run(*cmd: str, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run([str(site / "bin" / cmd[0]), *cmd[1:]], cwd=elsewhere, env=env, capture_output=True,
                              text=True, timeout=timeout)

    installed = site / "synth" / "_share" / "models" / "default"
    where = subprocess.run([sys.executable, "-c", "import synth.resources as r; print(r.__file__); "
                            "print(r.default_bundle()); print(r.factory_presets_dir())"],
                           cwd=elsewhere, env=env, capture_output=True, text=True, timeout=60)
    assert where.stdout.split() == [str(site / "synth" / "resources.py"), str(installed),
                                    str(site / "synth" / "_share" / "presets")], where.stdout + where.stderr

    info = json.loads((ROOT / "models" / "default" / "bundle.json").read_text())
    helped = run("pgesam-synth", "--help")
    assert helped.returncode == 0 and str(installed) in helped.stdout, helped.stdout

    smoke = run("pgesam-synth", "--smoke-test", timeout=150)
    assert smoke.returncode == 0, smoke.stdout + smoke.stderr
    assert "smoke test passed" in smoke.stdout and f"({info['hash'][:8]})" in smoke.stdout, smoke.stdout

    import mido

    song = mido.MidiFile(ticks_per_beat=480)
    track = mido.MidiTrack()
    song.tracks.append(track)
    for pitch in (60, 64, 67):  # a one-beat C major chord
        track.append(mido.Message("note_on", note=pitch, velocity=100, time=0))
    track.append(mido.Message("note_off", note=60, velocity=0, time=480))
    track.append(mido.Message("note_off", note=64, velocity=0, time=0))
    track.append(mido.Message("note_off", note=67, velocity=0, time=0))
    song.save(elsewhere / "tiny.mid")
    rendered = run("synth", "render", "tiny.mid", "-o", "tiny.wav", "--preset", "Grand Keys", "--quiet", "--json")
    assert rendered.returncode == 0, rendered.stdout + rendered.stderr
    assert f"source: model bundle {installed} ({info['hash']})" in rendered.stderr, rendered.stderr
    audio, rate = sf.read(elsewhere / "tiny.wav", dtype="float32")
    rms_db = 20 * math.log10(float(np.sqrt(np.mean(np.square(audio)))) + 1e-12)
    assert rate == 48000 and audio.shape[0] > rate and rms_db > -50, (audio.shape, rms_db)
    assert json.loads(rendered.stdout.strip().splitlines()[-1])["notes_generated"] == 3
