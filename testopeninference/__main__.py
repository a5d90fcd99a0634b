import sys

from testopeninference.cli import main

sys.exit(main())
