"""The Redis store: every multi-key write is one Lua script, every call one round trip.

Key shapes live in `_keys.py`, the scripts in `lua/` (the execution scripts prefixed by
`lua/_prelude.lua`). Worker writes are fenced: the scripts compare the caller's token with the
execution's fence counter and its lease, and answer "lease lost" without writing when they differ.

The store speaks RESP itself over one multiplexed connection (`_mux.py`, replies parsed by hiredis),
plus a connection per blocking read and one for pub/sub (`_connection.py`), plain, TLS or unix
socket as the URL says (`_settings.py`). Connection failures, deadlines and the server's transient
states surface as `StoreUnavailable` with the cause kept (`ConnectionError`, `TimeoutError`, or the
reply as a `RedisReplyError`). Each part of the store contract is a module of its own (`_executions`,
`_runs`, `_signals`, `_controls`, `_queue`, `_timers`, `_status`, `_retention`, `_schedules`);
`RedisStore` (`_store.py`) is all of them over one `RedisConnection`.
"""

from ._mux import RedisReplyError
from ._settings import RedisSettings
from ._store import RedisStore

__all__ = ["RedisReplyError", "RedisSettings", "RedisStore"]
