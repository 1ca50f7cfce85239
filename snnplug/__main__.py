"""``python -m snnplug``: the ``snnplug`` command."""

import sys

from snnplug.app.cli import main

sys.exit(main())
