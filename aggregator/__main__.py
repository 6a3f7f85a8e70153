"""``python -m aggregator`` is the same as the ``aggregator`` command."""

from aggregator.cli import main

# Guarded: poll worker processes import the main module again when they start.
if __name__ == "__main__":
    raise SystemExit(main())
