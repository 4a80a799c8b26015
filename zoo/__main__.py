"""`python -m zoo`: the model table; `python -m zoo train ...` and the other commands."""

import sys

from zoo.cli import main

if __name__ == "__main__":
    sys.exit(main())
