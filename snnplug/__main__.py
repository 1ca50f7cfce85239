"""``python -m snnplug``: the ``snnplug`` command."""

import sys

try:  # the command's module (moving to snnplug.app.cli)
    from snnplug.app.cli import main
except ImportError:
    from snnplug.cli import main

sys.exit(main())
