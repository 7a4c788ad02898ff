import sys

from trackli.cli import main

sys.exit(main())
