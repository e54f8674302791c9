import sys

from srsdk.cli.main import main

sys.exit(main())
