"""`python -m mlops_desktop` runs the same entry point as the `mlops-desktop` command."""

from mlops_desktop.cli.main import main

raise SystemExit(main())
