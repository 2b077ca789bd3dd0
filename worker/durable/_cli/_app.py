"""The command line's shared parts: the app, its global options and settings, argument parsers."""

from __future__ import annotations

import asyncio
import contextlib
import enum
import importlib
import os
import re
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import orjson
import typer

from .._client._durable import Durable
from .._errors import StoreUnavailable, WorkflowNotFound
from .._workflow._definitions import registered_workflows

T = TypeVar("T")

DEFAULT_REDIS_URL = "redis://localhost:6379/0"


class CliError(Exception):
    """A user-facing failure: printed as one line, exit status `code`."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


class Output(enum.StrEnum):
    TABLE = "table"
    JSON = "json"


class IdReusePolicy(enum.StrEnum):
    REJECT = "reject"
    ALLOW_IF_FINISHED = "allow_if_finished"


class ShapeFormat(enum.StrEnum):
    TEXT = "text"
    MERMAID = "mermaid"
    JSON = "json"


@dataclass
class Settings:
    redis_url: str = DEFAULT_REDIS_URL
    apps: list[str] = field(default_factory=list)
    output: Output = Output.TABLE
    actor: str | None = None
    _loaded: bool = False

    @property
    def json(self) -> bool:
        return self.output == Output.JSON

    def load_apps(self, *, required: bool = False) -> None:
        if self._loaded:
            return
        self._loaded = True
        if required and not self.apps:
            raise CliError("no workflows to serve: pass --app MODULE (or set DURABLE_APP)", 2)
        # A console script does not have the working directory on sys.path; `python -m` does.
        cwd = os.getcwd()
        if cwd not in sys.path:
            sys.path.insert(0, cwd)
        for name in self.apps:
            try:
                importlib.import_module(name)
            except Exception as exc:
                raise CliError(f"cannot import app module {name!r}: {type(exc).__name__}: {exc}", 2) from exc

    def durable(self, *, op_timeout_s: float | None = None) -> Durable:
        from .._store._redis import RedisStore

        self.load_apps()
        options: dict[str, Any] = {} if op_timeout_s is None else {"op_timeout_s": op_timeout_s}
        try:
            store = RedisStore.from_url(self.redis_url, **options)
        except ValueError as exc:
            raise CliError(f"invalid --redis-url {_safe_url(self.redis_url)!r}: {exc}", 2) from exc
        return Durable(store=store, workflows=registered_workflows(), actor=self.actor)


def _safe_url(url: str) -> str:
    """The URL without its password, even when the rest of it does not parse (it goes into errors and logs)."""
    try:
        parts = urlsplit(url)
        if parts.password:
            netloc = f"{parts.username or ''}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
            return urlunsplit(parts._replace(netloc=netloc))
    except ValueError:
        pass
    return _USERINFO_PASSWORD.sub(r"\1***@", url)


# user:password@ right after the scheme, for URLs urlsplit cannot take apart (a bad port, say).
_USERINFO_PASSWORD = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://[^/:@]*:)[^/@]*@")


def _run(ctx: typer.Context, fn: Callable[[Durable], Awaitable[T]]) -> T:
    settings: Settings = ctx.obj

    async def go() -> T:
        d = settings.durable()
        try:
            return await fn(d)
        except StoreUnavailable as exc:
            raise CliError(f"cannot reach Redis at {_safe_url(settings.redis_url)}: {exc.message}") from exc
        except WorkflowNotFound as exc:
            hint = "" if settings.apps else "; pass --app MODULE (or set DURABLE_APP) so workflow ids resolve"
            raise CliError(exc.message + hint) from exc
        finally:
            with contextlib.suppress(Exception):
                await d.close()

    return asyncio.run(go())


def _json_arg(value: str | None, what: str) -> Any:
    """A JSON value given inline, as `@file`, or as `@-` (stdin)."""
    if value is None:
        return None
    text: str | bytes = value
    if value.startswith("@"):
        path = value[1:]
        try:
            text = sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
        except OSError as exc:
            raise CliError(f"cannot read {what} file {path!r}: {exc.strerror or exc}", 2) from exc
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise CliError(f"{what} is not valid JSON: {exc}", 2) from exc


def _when(value: str | None, what: str) -> datetime | None:
    if value is None:
        return None
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00") if value.endswith("Z") else value)
    except ValueError:
        raise CliError(
            f"{what} must be an ISO 8601 time such as 2024-05-01T10:00:00Z, got {value!r}", 2
        ) from None
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=UTC)


# ---------------------------------------------------------------------------- the app

app = typer.Typer(
    name="durable",
    help="Durable workflows: run workers, start and operate executions and schedules.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)
schedules_app = typer.Typer(
    help="Inspect and operate schedules (list, get, pause, resume, trigger, remove).", no_args_is_help=True
)
app.add_typer(schedules_app, name="schedules")
versions_app = typer.Typer(
    help="Worker versions: which one new executions go to, and what each still runs (list, promote).",
    no_args_is_help=True,
)
app.add_typer(versions_app, name="versions")


@app.callback()
def _global(
    ctx: typer.Context,
    redis_url: Annotated[
        str, typer.Option("--redis-url", envvar="DURABLE_REDIS_URL", help="Redis holding the executions.")
    ] = DEFAULT_REDIS_URL,
    app_modules: Annotated[
        list[str] | None,
        typer.Option(
            "--app",
            envvar="DURABLE_APP",
            help="Module(s) to import so workflow ids resolve (repeat, or comma-separate).",
        ),
    ] = None,
    output: Annotated[
        Output,
        typer.Option("--output", "-o", envvar="DURABLE_OUTPUT", help="table for people, json for scripts."),
    ] = Output.TABLE,
    actor: Annotated[
        str | None,
        typer.Option(
            "--actor", envvar="DURABLE_ACTOR", help="Who is acting, for the audit (default: OS user)."
        ),
    ] = None,
) -> None:
    apps = [part for item in app_modules or () for part in item.replace(",", " ").split() if part]
    ctx.obj = Settings(redis_url=redis_url, apps=apps, output=output, actor=actor or None)


# ---------------------------------------------------------------------------- worker
