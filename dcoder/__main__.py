import sys

from dcoder.cli import main

sys.exit(main())
