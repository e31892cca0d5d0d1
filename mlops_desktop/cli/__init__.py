"""The operator console: `mlops-desktop SUBCOMMAND`, a thin face over the core (no Qt unless the GUI is opened)."""
