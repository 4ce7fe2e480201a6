"""``python -m fspai ...``: the same command line as the ``fspai`` console script."""
import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
