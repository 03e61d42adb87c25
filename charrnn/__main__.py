import sys

from charrnn.interfaces.cli import main

sys.exit(main())
