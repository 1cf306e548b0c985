import sys

from clipaudit.cli import main

sys.exit(main())
