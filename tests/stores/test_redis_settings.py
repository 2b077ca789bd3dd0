"""Redis URLs and options: parsed once, each mistake a one-line `ValueError` naming it."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
import redis.asyncio as aioredis
import trustme

from durable import RedisStore, Store
from durable._store._redis._settings import RedisSettings, settings_from_client


def test_plain_urls() -> None:
    s = RedisSettings.from_url("redis://127.0.0.1:6380/2")
    assert (s.host, s.port, s.db, s.path, s.username, s.password, s.tls) == (
        "127.0.0.1",
        6380,
        2,
        None,
        None,
        None,
        None,
    )
    assert s.connect_timeout_s == 2.0
    d = RedisSettings.from_url("redis://")
    assert (d.host, d.port, d.db) == ("localhost", 6379, 0)
    a = RedisSettings.from_url(
        "redis://user:s3cr3t%20pass%2F%2B@db.example:7000?db=4&socket_connect_timeout=0.5"
    )
    assert (a.username, a.password, a.db, a.connect_timeout_s) == ("user", "s3cr3t pass/+", 4, 0.5)
    assert "s3cr3t" not in repr(a) and "s3cr3t" not in a.describe()
    u = RedisSettings.from_url("unix:///run/redis.sock?db=1")
    assert (u.path, u.db, u.tls) == ("/run/redis.sock", 1, None)
    assert RedisSettings.from_url("redis://h", db=3, socket_connect_timeout=1).db == 3


def test_rediss_builds_a_verifying_tls_context(tmp_path: Path) -> None:
    ca = trustme.CA()
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    s = RedisSettings.from_url(f"rediss://:pw@redis.example:6380/2?ssl_ca_certs={ca_file}")
    assert s.tls is not None and s.password == "pw" and s.db == 2
    assert s.tls.verify_mode == ssl.CERT_REQUIRED and s.tls.check_hostname
    loose = RedisSettings.from_url("rediss://h?ssl_cert_reqs=none")
    assert loose.tls is not None and loose.tls.verify_mode == ssl.CERT_NONE and not loose.tls.check_hostname
    named = RedisSettings.from_url("rediss://h", ssl_check_hostname="false", ssl_min_version="TLSv1_2")
    assert named.tls is not None and not named.tls.check_hostname
    assert named.tls.minimum_version == ssl.TLSVersion.TLSv1_2
    client = ca.issue_cert("client")
    cert, key = tmp_path / "client.pem", tmp_path / "client.key"
    client.cert_chain_pems[0].write_to_path(str(cert))
    client.private_key_pem.write_to_path(str(key))
    assert RedisSettings.from_url(f"rediss://h?ssl_certfile={cert}&ssl_keyfile={key}").tls is not None


@pytest.mark.parametrize(
    ("url", "options", "message"),
    [
        ("http://h:6379", {}, "unsupported Redis URL scheme 'http'"),
        ("redis://h:port/0", {}, "invalid Redis URL: Port could not be cast"),
        ("redis://h:6379/zero", {}, "Redis option 'db' must be a whole number, not 'zero'"),
        ("redis://h?db=-1", {}, "Redis database must be 0 or more, not -1"),
        ("redis://h?dbb=1", {}, "unknown Redis option 'dbb'"),
        ("redis://h?db=1&db=2", {}, "Redis URL option 'db' is given twice"),
        ("redis://h?db=1", {"db": 2}, "Redis option 'db' is given both in the URL and as an argument"),
        (
            "redis://h?socket_timeout=5",
            {},
            "'socket_timeout' is not supported: each store call has a deadline",
        ),
        ("redis://h", {"max_connections": 256}, "'max_connections' is not supported: the store multiplexes"),
        ("redis://h?socket_connect_timeout=soon", {}, "'socket_connect_timeout' must be a number of seconds"),
        ("redis://h?socket_connect_timeout=0", {}, "'socket_connect_timeout' must be more than 0 seconds"),
        ("redis://h?ssl_ca_certs=/ca.pem", {}, "Redis option 'ssl_ca_certs' needs a rediss:// URL (TLS)"),
        ("rediss://h?ssl_cert_reqs=always", {}, "'ssl_cert_reqs' must be none, optional or required"),
        (
            "rediss://h?ssl_check_hostname=maybe",
            {},
            "'ssl_check_hostname' must be true or false, not 'maybe'",
        ),
        ("rediss://h?ssl_min_version=SSLv1", {}, "'ssl_min_version' must be one of TLSv1, "),
        (
            "rediss://h?ssl_ca_certs=/nowhere/ca.pem",
            {},
            "cannot load the CA certificates '/nowhere/ca.pem': No such",
        ),
        ("rediss://h?ssl_certfile=/nowhere/c.pem", {}, "cannot load the client certificate '/nowhere/c.pem'"),
        ("rediss://h?ssl_keyfile=/k.pem", {}, "Redis option 'ssl_keyfile' needs 'ssl_certfile' too"),
        ("rediss://h?ssl_ciphers=NOPE", {}, "Redis option 'ssl_ciphers' matches no cipher: 'NOPE'"),
        ("unix://", {}, "a unix:// Redis URL needs the socket's path"),
    ],
)
def test_bad_urls_and_options_are_one_line_errors(url: str, options: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError) as info:
        RedisSettings.from_url(url, **options)
    assert message in str(info.value) and "\n" not in str(info.value), str(info.value)


def test_the_store_refuses_bad_urls_at_once() -> None:
    with pytest.raises(ValueError, match="unknown Redis option 'max_conections'"):
        RedisStore.from_url("redis://127.0.0.1:1/0?max_conections=3")
    with pytest.raises(ValueError, match="'socket_timeout' is not supported"):
        Store.from_url("redis://127.0.0.1:1/0", socket_timeout=5)


def test_settings_from_a_redis_py_client(tmp_path: Path) -> None:
    ca_file = tmp_path / "ca.pem"
    trustme.CA().cert_pem.write_to_path(str(ca_file))
    plain = settings_from_client(aioredis.Redis(host="db.example", port=7000, db=3, password="pw"))
    assert (plain.host, plain.port, plain.db, plain.password, plain.tls) == (
        "db.example",
        7000,
        3,
        "pw",
        None,
    )
    unix = settings_from_client(aioredis.Redis(unix_socket_path="/run/redis.sock", db=1))
    assert (unix.path, unix.db) == ("/run/redis.sock", 1)
    tls = settings_from_client(aioredis.Redis.from_url(f"rediss://h:6380/0?ssl_ca_certs={ca_file}"))
    assert tls.tls is not None and tls.tls.verify_mode == ssl.CERT_REQUIRED and tls.port == 6380


async def test_a_store_on_a_redis_py_client_still_works_with_a_deprecation_warning(redis_url: str) -> None:
    client = aioredis.Redis.from_url(redis_url)
    with pytest.warns(DeprecationWarning, match=r"use RedisStore\.from_url"):
        store = RedisStore(client)
    try:
        expected = RedisSettings.from_url(redis_url)
        assert (store.settings.host, store.settings.port, store.settings.db) == (
            expected.host,
            expected.port,
            expected.db,
        )
        await store.enqueue("e1", "start")
        assert await store.queue_depth() == 1
    finally:
        await store.close()
        await client.aclose()
