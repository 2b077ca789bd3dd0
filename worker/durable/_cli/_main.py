"""The `durable` command: run a worker, start and signal executions, operate on them and on schedules.

Every command talks to Redis (`--redis-url`, env `DURABLE_REDIS_URL`). Commands that name a
workflow need its module imported (`--app`, env `DURABLE_APP`) so the id resolves and the
input is validated. Output is a rich table by default and JSON with `-o json`. Bad input
ends with a non-zero exit status and one line on stderr: `error: <what was wrong>`.
The global options may be given before or after the command name.
"""

from __future__ import annotations

import os
import sys

import typer

from .._errors import DurableError

# Importing the command modules registers their commands on `app`, in this order (the help lists them so).
from . import _worker_command  # noqa: F401  # isort: skip  (`worker` first, then the rest)
from . import _executions, _schedules  # noqa: F401  # isort: skip
from . import _replay  # noqa: F401  # isort: skip
from . import _versions  # noqa: F401  # isort: skip
from . import _dashboard_command  # noqa: F401  # isort: skip
from . import _output as out
from ._app import CliError, app

# ---------------------------------------------------------------------------- entry point
_GLOBAL_WITH_VALUE = frozenset({"--redis-url", "--app", "--output", "-o", "--actor"})


def hoist_global_options(args: list[str]) -> list[str]:
    """Move the global options to the front, where Click reads them, wherever they were given."""
    front: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            rest.extend(args[i:])
            break
        if arg in _GLOBAL_WITH_VALUE:
            front.extend(args[i : i + 2])
            i += 2
            continue
        inline = arg.split("=", 1)[0] in _GLOBAL_WITH_VALUE and "=" in arg
        if inline or (arg.startswith("-o") and not arg.startswith("--") and len(arg) > 2):
            front.append(arg)
        else:
            rest.append(arg)
        i += 1
    return front + rest


def main(argv: list[str] | None = None) -> None:
    args = hoist_global_options(list(sys.argv[1:] if argv is None else argv))
    command = typer.main.get_command(app)
    debug = os.environ.get("DURABLE_DEBUG", "") not in ("", "0")
    try:
        rv = command.main(args=args, prog_name="durable", standalone_mode=False)
    except typer.TyperException as exc:
        help_ctx = getattr(exc, "ctx", None)
        if type(exc).__name__ == "NoArgsIsHelpError" and help_ctx is not None:
            # `durable` or `durable schedules` alone: show the help.
            sys.stdout.write(help_ctx.get_help() + "\n")
            sys.exit(2)
        format_message = getattr(exc, "format_message", None)
        out.error(format_message() if callable(format_message) else str(exc))
        code = getattr(exc, "exit_code", 2)
        sys.exit(code if isinstance(code, int) else 2)
    except typer.Abort:
        out.error("aborted")
        sys.exit(130)
    except CliError as exc:
        out.error(str(exc))
        sys.exit(exc.code)
    except DurableError as exc:
        out.error(exc.message)
        sys.exit(1)
    except (ValueError, OSError) as exc:
        if debug:
            raise
        out.error(str(exc) or type(exc).__name__)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:
        if debug:
            raise
        out.error(f"unexpected {type(exc).__name__}: {exc} (set DURABLE_DEBUG=1 for a traceback)")
        sys.exit(1)
    sys.exit(rv if isinstance(rv, int) else 0)
