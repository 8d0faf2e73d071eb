"""``python -m pynector``: the same as the ``pynector`` command."""

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
