"""`python -m collector` runs the collector in the foreground (same as `tracehouse collector`)."""

import sys

from collector.cli import main

sys.exit(main(["collector", *sys.argv[1:]]))
