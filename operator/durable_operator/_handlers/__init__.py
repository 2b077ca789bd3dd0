"""The kopf handlers, one module per kind; `build_registry` registers them all."""

from ._registry import build_registry

__all__ = ["build_registry"]
