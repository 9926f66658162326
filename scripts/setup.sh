#!/usr/bin/env bash
# Idempotent setup: system packages (when root), a virtual environment in .venv, the project and its test extras.
# Safe to run again: each step checks whether it is needed first. Used by `make run` and `make test`.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}
# The torch to install when the venv has none. On this project's machines `torch==2.13.0` is a local CPU wheel.
# On your own machine, set TORCH_SPEC (e.g. TORCH_SPEC="torch --index-url https://download.pytorch.org/whl/cu124")
# or install torch into .venv yourself first: setup never replaces a torch that imports.
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}

APT_PACKAGES=(libportaudio2 jackd2 fluidsynth libfluidsynth3 libxcb-icccm4 libxcb-keysyms1 xvfb
              fluid-soundfont-gm musescore-general-soundfont-small timgm6mb-soundfont csound-soundfont opl3-soundfont
              musescore-general-soundfont fluidr3mono-gm-soundfont)

missing_apt() {
    local pkg
    for pkg in "${APT_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || echo "$pkg"
    done
}

if command -v dpkg-query >/dev/null; then
    mapfile -t MISSING < <(missing_apt)
    if [ ${#MISSING[@]} -gt 0 ]; then
        if [ "$(id -u)" = 0 ]; then
            echo "setup: installing system packages: ${MISSING[*]}"
            export DEBIAN_FRONTEND=noninteractive
            apt-get update -qq
            apt-get install -y -qq --no-install-recommends "${MISSING[@]}" >/dev/null
        else
            echo "setup: missing system packages (install them with sudo, then run again):" >&2
            echo "  sudo apt-get install --no-install-recommends ${MISSING[*]}" >&2
            exit 1
        fi
    fi
fi

if [ ! -x "$VENV/bin/python" ]; then
    echo "setup: creating $VENV"
    "$PYTHON" -m venv "$VENV"
fi
PY="$VENV/bin/python"
PIP=("$PY" -m pip -q --disable-pip-version-check)

# The installer: uv (a PyPI package, put into the venv by pip) installs the same packages as pip from the same
# sources, several times faster (parallel downloads, unpacking and bytecode compiling: ~1 min instead of ~2.5 on the
# 2-core CI machine). uv reads no pip configuration, so pip's package sources (find-links, index URLs, constraints,
# from pip.conf files and PIP_* variables: on this project's machines the local CPU torch wheel) are handed to it, and
# it picks the best version across them as pip does. Where uv cannot be had (offline, SYNTH_INSTALLER=pip), pip does
# it all as before.
pip_sources() {
    local key val item seen=" " index=""
    while IFS= read -r line; do
        key=${line%%=*}; val=${line#*=}; val=${val#\'}; val=${val%\'}
        case "${key##*.}" in
            find-links) flag=--find-links ;;
            extra-index-url) flag=--extra-index-url ;;
            constraint) flag=--constraint ;;
            index-url) index=$val; continue ;;
            *) continue ;;
        esac
        for item in $val; do
            case "$seen" in *" $flag=$item "*) continue ;; esac
            seen="$seen$flag=$item "
            printf '%s\n%s\n' "$flag" "$item"
        done
    done < <("$PY" -m pip config list 2>/dev/null)
    [ -z "$index" ] || printf '%s\n%s\n' --index-url "$index"
}
INSTALL=()
pick_installer() {  # sets INSTALL, once, when something is to be installed
    [ ${#INSTALL[@]} -eq 0 ] || return 0
    INSTALL=("${PIP[@]}" install)
    if [ "${SYNTH_INSTALLER:-uv}" = uv ]; then
        if [ -x "$VENV/bin/uv" ] || "${PIP[@]}" install uv >/dev/null 2>&1; then
            mapfile -t SOURCES < <(pip_sources)
            INSTALL=("$VENV/bin/uv" pip install -q --python "$PY" --index-strategy unsafe-best-match --compile-bytecode
                     "${SOURCES[@]}")
        else
            echo "setup: uv could not be installed; installing with pip"
        fi
    fi
}

if ! "$PY" -c "import torch" 2>/dev/null; then
    echo "setup: installing $TORCH_SPEC"
    pick_installer
    # shellcheck disable=SC2086
    "${INSTALL[@]}" $TORCH_SPEC 2>&1 | grep -v "^WARNING: Location" || true
    "$PY" -c "import torch" || { echo "setup: torch did not install ($TORCH_SPEC); set TORCH_SPEC" >&2; exit 1; }
fi

STAMP="$VENV/.synth-installed"
if [ ! -f "$STAMP" ] || [ pyproject.toml -nt "$STAMP" ]; then
    echo "setup: installing the project and its test tools into $VENV"
    pick_installer
    "${INSTALL[@]}" -e ".[test]" 2>&1 | grep -v "^WARNING: Location" || true
    "$PY" scripts/fix_torchaudio.py
    "$PY" -c "import synth, encodec, torch, sounddevice, rtmidi, PySide6, fluidsynth" || exit 1
    touch "$STAMP"
fi
