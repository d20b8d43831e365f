"""`python -m streaming [options]` is `livermore worker [options]`."""

import sys

from streaming.cli import main

if __name__ == "__main__":
    sys.exit(main(["worker", *sys.argv[1:]]))
