"""Where and how to reach Redis, parsed once from a URL into a frozen value.

`redis://[[user]:password@]host[:port][/db]`, `rediss://…` (TLS) and `unix://[[user]:password@]/path`,
with the query options redis-py's URLs take for the connection (`db`, `socket_connect_timeout`,
`ssl_cert_reqs`, `ssl_ca_certs`, `ssl_certfile`, `ssl_keyfile`, `ssl_check_hostname`, ...). The same
options may be given as keyword arguments. The TLS context is built here, so a missing CA file or a
bad option fails at start with one line naming it, not at the first call.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

__all__ = ["RedisSettings", "settings_from_client"]

_SCHEMES = ("redis", "rediss", "unix")
_CERT_REQS = {"none": ssl.CERT_NONE, "optional": ssl.CERT_OPTIONAL, "required": ssl.CERT_REQUIRED}
_TRUE = ("1", "true", "yes", "on", "y")
_FALSE = ("0", "false", "no", "off", "n")

# Options that configured redis-py's pool and sockets, which the store no longer has: refused with the
# reason rather than dropped, since whoever set one expected it to do something.
_GONE = {
    "socket_timeout": "each store call has a deadline instead: pass op_timeout_s",
    "max_connections": "the store multiplexes its calls over a few connections and has no pool",
    "pool_timeout": "the store multiplexes its calls over a few connections and has no pool",
}


@dataclass(frozen=True, slots=True)
class RedisSettings:
    """One Redis server: its address (`host`/`port`, or a unix socket `path`), database, credentials,
    TLS context (None: plain TCP) and how long to wait for a connection."""

    host: str = "localhost"
    port: int = 6379
    path: str | None = None
    db: int = 0
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    tls: ssl.SSLContext | None = field(default=None, repr=False)
    connect_timeout_s: float | None = 2.0

    @classmethod
    def from_url(cls, url: str, **options: Any) -> RedisSettings:
        """Parse `url` and `options`; raises `ValueError` with one line naming what is wrong."""
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as exc:
            raise ValueError(f"invalid Redis URL: {exc}") from None
        scheme = parts.scheme.lower()
        if scheme not in _SCHEMES:
            raise ValueError(f"unsupported Redis URL scheme {scheme!r}: use redis://, rediss:// or unix://")
        query: dict[str, str] = {}
        for name, value in parse_qsl(parts.query, keep_blank_values=True):
            if name in query:
                raise ValueError(f"Redis URL option {name!r} is given twice")
            query[name] = value
        both = sorted(query.keys() & options.keys())
        if both:
            raise ValueError(f"Redis option {both[0]!r} is given both in the URL and as an argument")
        given = {**options, **query}
        if scheme == "unix":
            if not parts.path:
                raise ValueError("a unix:// Redis URL needs the socket's path: unix:///path/to/redis.sock")
            where: dict[str, Any] = {"path": unquote(parts.path)}
        else:
            where = {"host": unquote(parts.hostname or "localhost"), "port": port or 6379}
            db_path = unquote(parts.path).strip("/")
            if db_path and "db" not in given:
                given["db"] = db_path
        return _settings(
            where,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            tls=scheme == "rediss",
            options=given,
        )

    def describe(self) -> str:
        """Where this is, without credentials (for messages)."""
        where = f"unix:{self.path}" if self.path else f"{self.host}:{self.port}"
        return f"{where}/{self.db}" + (" (TLS)" if self.tls is not None else "")


def settings_from_client(client: Any) -> RedisSettings:
    """The settings of a redis-py client's connection pool: the one place that reads redis-py's
    internals, for callers that still build `RedisStore(client)`. Only the address, the database,
    the credentials, the connect time-out and the TLS options carry over."""
    pool = client.connection_pool
    kwargs: Mapping[str, Any] = pool.connection_kwargs
    kind = pool.connection_class.__name__
    if "Unix" in kind:
        where: dict[str, Any] = {"path": kwargs["path"]}
    else:
        where = {"host": kwargs.get("host") or "localhost", "port": int(kwargs.get("port") or 6379)}
    options = {k: v for k, v in kwargs.items() if k.startswith("ssl_") and k in _PARSERS and v is not None}
    if kwargs.get("socket_connect_timeout") is not None:
        options["socket_connect_timeout"] = kwargs["socket_connect_timeout"]
    options["db"] = kwargs.get("db") or 0
    return _settings(
        where,
        username=kwargs.get("username"),
        password=kwargs.get("password"),
        tls="SSL" in kind,
        options=options,
    )


# ---------------------------------------------------------------------------- options
def _settings(
    where: dict[str, Any], *, username: str | None, password: str | None, tls: bool, options: dict[str, Any]
) -> RedisSettings:
    for name in options:
        if name in _GONE:
            raise ValueError(f"Redis option {name!r} is not supported: {_GONE[name]}")
        if name not in _PARSERS:
            raise ValueError(f"unknown Redis option {name!r}")
    values = {name: _PARSERS[name](name, value) for name, value in options.items()}
    ssl_options = {name: v for name, v in values.items() if name.startswith("ssl_")}
    if ssl_options and not tls:
        raise ValueError(f"Redis option {next(iter(ssl_options))!r} needs a rediss:// URL (TLS)")
    db = values.get("db", 0)
    if db < 0:
        raise ValueError(f"Redis database must be 0 or more, not {db}")
    return RedisSettings(
        **where,
        db=db,
        username=username,
        password=password,
        tls=_tls_context(ssl_options) if tls else None,
        connect_timeout_s=values.get("socket_connect_timeout", 2.0),
    )


def _tls_context(o: dict[str, Any]) -> ssl.SSLContext:
    """A client context as redis-py builds one: the system's CAs unless others are given, the
    server's certificate required and its host name checked unless told otherwise."""
    context = ssl.create_default_context()
    cert_reqs = o.get("ssl_cert_reqs", ssl.CERT_REQUIRED)
    context.check_hostname = bool(o.get("ssl_check_hostname", True)) and cert_reqs != ssl.CERT_NONE
    context.verify_mode = cert_reqs
    certfile, keyfile = o.get("ssl_certfile"), o.get("ssl_keyfile")
    if keyfile and not certfile:
        raise ValueError("Redis option 'ssl_keyfile' needs 'ssl_certfile' too")
    try:
        if certfile:
            context.load_cert_chain(certfile, keyfile, o.get("ssl_password"))
    except (OSError, ssl.SSLError) as exc:
        raise ValueError(f"cannot load the client certificate {certfile!r}: {_reason(exc)}") from None
    cafile, capath, cadata = o.get("ssl_ca_certs"), o.get("ssl_ca_path"), o.get("ssl_ca_data")
    if cafile or capath or cadata:
        try:
            context.load_verify_locations(cafile, capath, cadata)
        except (OSError, ssl.SSLError) as exc:
            raise ValueError(
                f"cannot load the CA certificates {cafile or capath!r}: {_reason(exc)}"
            ) from None
    if "ssl_min_version" in o:
        context.minimum_version = o["ssl_min_version"]
    if "ssl_ciphers" in o:
        try:
            context.set_ciphers(o["ssl_ciphers"])
        except ssl.SSLError:
            raise ValueError(f"Redis option 'ssl_ciphers' matches no cipher: {o['ssl_ciphers']!r}") from None
    return context


def _reason(exc: BaseException) -> str:
    return str(exc.args[-1]) if isinstance(exc, OSError) and exc.args else str(exc)


def _int(name: str, value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ValueError(f"Redis option {name!r} must be a whole number, not {value!r}") from None


def _timeout(name: str, value: Any) -> float | None:
    if value is None or (isinstance(value, str) and value.lower() == "none"):
        return None
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"Redis option {name!r} must be a number of seconds, not {value!r}") from None
    if not seconds > 0:
        raise ValueError(f"Redis option {name!r} must be more than 0 seconds, not {value!r}")
    return seconds


def _bool(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE or text in _FALSE:
        return text in _TRUE
    raise ValueError(f"Redis option {name!r} must be true or false, not {value!r}")


def _text(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"Redis option {name!r} must be a string, not {value!r}")
    return value


def _cert_reqs(name: str, value: Any) -> ssl.VerifyMode:
    if isinstance(value, ssl.VerifyMode):
        return value
    mode = _CERT_REQS.get(str(value).lower())
    if mode is None:
        raise ValueError(f"Redis option {name!r} must be none, optional or required, not {value!r}")
    return mode


def _tls_version(name: str, value: Any) -> ssl.TLSVersion:
    if isinstance(value, ssl.TLSVersion):
        return value
    try:
        return ssl.TLSVersion(int(value)) if str(value).isdigit() else ssl.TLSVersion[str(value)]
    except (KeyError, ValueError):
        names = ", ".join(v.name for v in ssl.TLSVersion if v.name.startswith("TLS"))
        raise ValueError(f"Redis option {name!r} must be one of {names}, not {value!r}") from None


_PARSERS: dict[str, Callable[[str, Any], Any]] = {
    "db": _int,
    "socket_connect_timeout": _timeout,
    "ssl_cert_reqs": _cert_reqs,
    "ssl_check_hostname": _bool,
    "ssl_ca_certs": _text,
    "ssl_ca_path": _text,
    "ssl_ca_data": _text,
    "ssl_certfile": _text,
    "ssl_keyfile": _text,
    "ssl_password": _text,
    "ssl_min_version": _tls_version,
    "ssl_ciphers": _text,
}
