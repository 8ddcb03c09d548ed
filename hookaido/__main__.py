import sys

from hookaido.cli import main

sys.exit(main())
