#!/usr/bin/env bash
# The whole test suite on a real audio/MIDI bus: sets up if needed, starts a JACK server with the dummy backend
# (unless one already runs), runs pytest with Qt offscreen, stops the server it started. Extra args go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
PY=${VENV:-.venv}/bin/python

export QT_QPA_PLATFORM=${QT_QPA_PLATFORM:-offscreen}
export JACK_NO_START_SERVER=1     # clients must never spawn their own server: tests use the one started here
export SYNTH_TEST_JACK=1

JACKD_PID=""
stop_jack() {
    if [ -n "$JACKD_PID" ]; then
        kill "$JACKD_PID" 2>/dev/null || true
        wait "$JACKD_PID" 2>/dev/null || true
    fi
}
trap stop_jack EXIT

if ! jack_lsp >/dev/null 2>&1; then
    # 1024-frame periods stay clean under CI load; 256 do not (see shared notes). Realtime when allowed.
    JACK_LOG=${JACK_LOG:-/tmp/synth-jackd.log}
    jackd -R -d dummy -r 48000 -p 1024 >"$JACK_LOG" 2>&1 &
    JACKD_PID=$!
    for _ in $(seq 100); do jack_lsp >/dev/null 2>&1 && break; sleep 0.1; done
    jack_lsp >/dev/null 2>&1 || { echo "test: jackd did not start, log:" >&2; cat "$JACK_LOG" >&2; exit 1; }
fi

# Two pytest-xdist workers where there are 2+ cores (the CI machine has 2): the tests on the JACK bus and in Qt run one
# after the other on one worker (their xdist group, see tests/conftest.py) while the other takes the rest.
# SYNTH_TEST_WORKERS=0 runs everything serially in one process (so does `-n 0` among the extra args).
WORKERS=${SYNTH_TEST_WORKERS:-$(( $(nproc) >= 2 ? 2 : 0 ))}
"$PY" -m pytest -n "$WORKERS" --dist loadgroup "$@"
