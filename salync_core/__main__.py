"""``python -m salync_core`` is the ``salync`` command."""

from salync_core.cli import main

main()
