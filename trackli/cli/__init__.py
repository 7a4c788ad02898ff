"""`trackli` command line; see `trackli.cli.main`."""

from trackli.cli.main import main

__all__ = ["main"]
