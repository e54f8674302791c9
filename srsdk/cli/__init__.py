"""Command-line entry points: ``srsdk <command>``, one module per command."""
