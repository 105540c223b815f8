"""The ``flashsim`` command line: :func:`main` is the console script."""

from sim.cli.main import main

__all__ = ["main"]
