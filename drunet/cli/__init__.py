"""The drunet command line (Typer)."""
