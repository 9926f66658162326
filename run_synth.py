"""Start the instrument on the bundled model (`make run`). See `python run_synth.py --help`."""

from synth.gui.app import exit_now, main

if __name__ == "__main__":
    exit_now(main())  # no interpreter teardown: with Qt, torch and PortAudio threads it is slow and can crash
