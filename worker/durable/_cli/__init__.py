"""The `durable` command line, a client of `Durable`."""

from ._main import main

__all__ = ["main"]
