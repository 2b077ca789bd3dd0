"""The workflow part: what workflow code uses (the context, the decorators, deterministic helpers)."""
