"""`python -m goald ...` behaves like the `goald` command."""
import sys

from goald.main import main

sys.exit(main())
