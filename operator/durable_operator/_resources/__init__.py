"""The custom resources' models, one module per kind (`_models` gathers them into kinds)."""
