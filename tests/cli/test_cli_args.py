"""In-process checks of the command line's argument handling (the subprocess tests cover behaviour)."""

from __future__ import annotations

import pytest

from durable._cli._app import CliError, _json_arg, _safe_url, _when
from durable._cli._main import hoist_global_options


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (["get", "e1", "-o", "json"], ["-o", "json", "get", "e1"]),
        (["get", "e1", "-ojson", "--redis-url=redis://x"], ["-ojson", "--redis-url=redis://x", "get", "e1"]),
        (["--app", "a", "start", "wf", "--app", "b"], ["--app", "a", "--app", "b", "start", "wf"]),
        (
            ["cancel", "e", "--actor", "alice", "--reason", "r"],
            ["--actor", "alice", "cancel", "e", "--reason", "r"],
        ),
        (["start", "wf", "--", "-o", "json"], ["start", "wf", "--", "-o", "json"]),
        (["schedules", "list"], ["schedules", "list"]),
    ],
)
def test_global_options_may_follow_the_command(given: list[str], expected: list[str]) -> None:
    assert hoist_global_options(given) == expected


def test_json_arguments() -> None:
    assert _json_arg('{"a": [1, 2]}', "--input") == {"a": [1, 2]}
    assert _json_arg(None, "--input") is None
    with pytest.raises(CliError, match="--payload is not valid JSON") as info:
        _json_arg("{", "--payload")
    assert info.value.code == 2


def test_times_and_urls() -> None:
    assert _when("2024-05-01T10:00:00Z", "--since") == _when("2024-05-01T10:00:00+00:00", "--since")
    assert _when("2024-05-01T10:00:00", "--since") == _when("2024-05-01T10:00:00Z", "--since")
    with pytest.raises(CliError, match="--until must be an ISO 8601 time"):
        _when("soon", "--until")
    assert _safe_url("redis://:s3cret@db:6379/0") == "redis://:***@db:6379/0"
    assert _safe_url("redis://user:s3cret@db/1") == "redis://user:***@db/1"
    assert _safe_url("redis://db:6379/0") == "redis://db:6379/0"
    # URLs that do not parse keep their password out of errors too.
    assert _safe_url("redis://u:s3cret@db:notaport/0") == "redis://u:***@db:notaport/0"
    assert _safe_url("ftp://u:s3cret@db/0") == "ftp://u:***@db/0"


async def test_worker_op_timeout_reaches_the_store() -> None:
    from durable._cli._app import Settings

    for given, expected in ((0.5, 0.5), (None, 10.0)):
        d = Settings(redis_url="redis://127.0.0.1:1/0").durable(op_timeout_s=given)
        assert d.store._op_timeout == expected  # type: ignore[attr-defined]
        await d.close()
