import sys

from tools.mizzenctl.cli import main

sys.exit(main())
