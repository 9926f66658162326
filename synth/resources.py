"""Where the bundled model and the factory presets are: the one place that knows.

In a checkout they are ``models/default`` and ``presets/`` at the repository root. An installed package (``pip
install .``, ``pipx install .``) carries them as package data: ``synth/_share/models/default`` and
``synth/_share/presets``. In the tree those two are symlinks to the checkout's folders, so git holds the files once
and the build copies them into the wheel (pyproject.toml, [tool.setuptools.package-data]). A checkout (the
package's parent folder holds pyproject.toml and run_synth.py; an editable install too) uses its own folders, so
`make run` uses and shows ``models/default`` as before.

Only paths: nothing here opens or checks a bundle (``synth.model.bundle.load_bundle`` does, hashes included), and
nothing beyond the standard library is imported.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
ROOT_DIR = PACKAGE_DIR.parent  # the repository root in a checkout; site-packages (or the like) when installed
SHARE_DIR = PACKAGE_DIR / "_share"


def _checkout_root() -> Path | None:
    return ROOT_DIR if (ROOT_DIR / "pyproject.toml").is_file() and (ROOT_DIR / "run_synth.py").is_file() else None


def default_bundle() -> Path:
    """The bundled model: ``<checkout>/models/default``, else the installed ``synth/_share/models/default``.

    A path even when no bundle is there (a checkout without the model, a broken install): callers then fall back to
    the demo source or fail with a message that names it, as before."""
    root = _checkout_root()
    return root / "models" / "default" if root is not None else SHARE_DIR / "models" / "default"


def factory_presets_dir() -> Path:
    """The factory presets: ``<checkout>/presets``, else the installed ``synth/_share/presets``."""
    root = _checkout_root()
    return root / "presets" if root is not None else SHARE_DIR / "presets"
