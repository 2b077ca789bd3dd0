"""Every key a Lua script touches is declared in its KEYS.

Redis asks scripts to declare their keys (a Cluster routes a script by them, and refuses one that
reaches a key it was not given); a script that builds a key name from an id in ARGV works on one
server and breaks on a Cluster. This reads each script (with the prelude it runs with) and checks
the key arguments of every `redis.call`/`redis.pcall`: each must be `KEYS[...]` or a local bound to
one. A command the table below does not know fails the check, so a new command is looked at once.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import durable._store

LUA = Path(durable._store.__file__).parent / "lua"

# Which arguments of a command are keys: the first, all of them, or none (channels are not keys).
_FIRST_ARG_IS_KEY = """
    GET SET PTTL PEXPIRE  HGET HSET HMGET HDEL HGETALL HINCRBY  LLEN LPOP RPUSH  SADD SREM SMEMBERS SISMEMBER
    ZADD ZREM ZSCORE ZRANGEBYSCORE ZCARD ZRANGE  XADD XDEL XACK
"""
KEY_ARGS = {
    **dict.fromkeys(_FIRST_ARG_IS_KEY.split(), "first"),
    "DEL": "all",
    "EXISTS": "all",
    "PUBLISH": "none",
}

_CALL = re.compile(r"redis\.p?call\(")
# `local a, b = KEYS[1], KEYS[2]` as a whole statement (not `local a = KEYS[1] .. suffix`).
_ALIAS = re.compile(
    r"^\s*local\s+([\w\s,]+?)\s*=\s*(KEYS\[[^\]]+\](?:\s*,\s*KEYS\[[^\]]+\])*)\s*(?:--.*)?$", re.M
)
_KEYS_REF = re.compile(r"KEYS\[[^\]]+\]")


def _arguments(source: str, start: int) -> list[str]:
    """The top-level arguments of the call whose '(' ends just before `start`."""
    depth, quote, arg, args = 0, "", [], []
    for ch in source[start:]:
        if quote:
            arg.append(ch)
            if ch == quote:
                quote = ""
            continue
        if ch in "'\"":
            quote = ch
        elif ch in "({[":
            depth += 1
        elif ch in ")}]":
            if depth == 0:
                args.append("".join(arg).strip())
                return args
            depth -= 1
        elif ch == "," and depth == 0:
            args.append("".join(arg).strip())
            arg = []
            continue
        arg.append(ch)
    raise ValueError("unbalanced call")


def undeclared_keys(source: str) -> list[str]:
    """One line per key argument that is not a declared key (empty if the script is clean)."""
    aliases = {name.strip() for names, _refs in _ALIAS.findall(source) for name in names.split(",")}
    problems = []
    for match in _CALL.finditer(source):
        args = _arguments(source, match.end())
        line = source.count("\n", 0, match.start()) + 1
        command = args[0].strip("'\"").upper()
        kind = KEY_ARGS.get(command)
        if kind is None:
            problems.append(f"line {line}: {command}: not in KEY_ARGS (which arguments are keys?)")
            continue
        keys = {"first": args[1:2], "all": args[1:], "none": []}[kind]
        for key in keys:
            if not (_KEYS_REF.fullmatch(key) or key in aliases):
                problems.append(f"line {line}: {command} {key}: not a declared key")
    return problems


def _scripts() -> list[Path]:
    return sorted(p for p in LUA.glob("*.lua") if p.name != "_prelude.lua")


@pytest.mark.parametrize("script", _scripts(), ids=lambda p: p.stem)
def test_every_key_a_script_touches_is_declared(script: Path) -> None:
    # Execution scripts run with the prelude; checking it with each is harmless for the others.
    source = (LUA / "_prelude.lua").read_text() + "\n" + script.read_text()
    assert undeclared_keys(source) == []


def test_the_scripts_build_no_key_names() -> None:
    prelude = (LUA / "_prelude.lua").read_text()
    assert "K_HEAD" not in prelude and "..EID.." not in prelude.replace(" ", "")


@pytest.mark.parametrize(
    ("source", "problem"),
    [
        ("redis.call('DEL', K_HEAD .. eid .. ':exec')", "DEL K_HEAD .. eid .. ':exec': not a declared key"),
        ("redis.call('HGET', ARGV[1], 'x')", "HGET ARGV[1]: not a declared key"),
        ("redis.call('DEL', KEYS[1], 'dw:' .. x)", "DEL 'dw:' .. x: not a declared key"),
        ("local k = KEYS[1]\nredis.call('HGET', k2, 'f')", "HGET k2: not a declared key"),
        ("local k = KEYS[1] .. ':x'\nredis.call('HGET', k, 'f')", "HGET k: not a declared key"),
        ("redis.call('SCAN', 0)", "SCAN: not in KEY_ARGS (which arguments are keys?)"),
        ("redis.pcall('ZADD', ARGV[3], 1, 'm')", "ZADD ARGV[3]: not a declared key"),
    ],
)
def test_the_check_finds_undeclared_keys(source: str, problem: str) -> None:
    assert [p.split(": ", 1)[1] for p in undeclared_keys(source)] == [problem]


def test_the_check_accepts_declared_keys_and_their_aliases() -> None:
    source = (
        "local rec, due = KEYS[1], KEYS[2]\n"
        "redis.call('HGET', rec, 'f')\n"
        "redis.call('ZADD', due, 1, 'm')\n"
        "redis.call('DEL', KEYS[3], KEYS[i])\n"
        "redis.call('PUBLISH', 'channel', cjson.encode({1, 2}))\n"
    )
    assert undeclared_keys(source) == []
