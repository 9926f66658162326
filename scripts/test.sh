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

# Where there are 2+ cores (the CI machine has 2): first everything but the `bus` tests (JACK bus, app timing: see
# tests/conftest.py) on two pytest-xdist workers, then the bus tests alone and serially, so that nothing else competes
# with the audio they record and the times they bound. SYNTH_TEST_WORKERS=0 runs everything serially in one process.
# Exit status 5 (no test selected) of one part is fine when the other ran tests.
WORKERS=${SYNTH_TEST_WORKERS:-$(( $(nproc) >= 2 ? 2 : 0 ))}
if [ "$WORKERS" -eq 0 ]; then
    "$PY" -m pytest "$@"  # not exec: the EXIT trap stops the server
    exit
fi
rc_parallel=0; rc_bus=0
"$PY" -m pytest -n "$WORKERS" --dist loadgroup -m "not bus" "$@" || rc_parallel=$?
"$PY" -m pytest -n 0 -m bus "$@" || rc_bus=$?
if [ "$rc_parallel" -eq 5 ] && [ "$rc_bus" -eq 5 ]; then exit 5; fi
for rc in "$rc_parallel" "$rc_bus"; do
    if [ "$rc" -ne 0 ] && [ "$rc" -ne 5 ]; then exit "$rc"; fi
done
exit 0
