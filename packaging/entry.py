"""Entry point of the frozen app: the same CLI and GUI as `mlops-desktop` (PyInstaller starts here)."""

import sys

from mlops_desktop.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
