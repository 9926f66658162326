"""Start the instrument on the bundled model (`make run`). See `python run_synth.py --help`."""

from gui.app import main

if __name__ == "__main__":
    raise SystemExit(main())
