"""The web dashboard: executions, workflows and schedules in a browser, with authenticated operator
actions. Another client of `Durable` beside the CLI (`durable dashboard`); it never talks to the
Kubernetes API. Starlette and uvicorn, Jinja2 templates with autoescaping, a small script, and an SVG
flow diagram drawn on the server."""

from ._app import create_app, serve
from ._config import TOKEN_ENV, DashboardConfig

__all__ = ["TOKEN_ENV", "DashboardConfig", "create_app", "serve"]
