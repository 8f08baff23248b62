"""`python -m kvcert.vault serve ...` (equivalent to `kvcert vault serve ...`)."""

import sys

from kvcert.vault.cli import main

sys.exit(main())
