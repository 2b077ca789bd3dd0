"""The status mirror: engine status events -> DurableExecution status.

The engine XADDs every status change to a stream in the same Lua script that makes the
change. The mirror reads it through its own consumer group (the engine hands a consumer
its unacknowledged entries first, so a restart resumes where the last run stopped),
coalesces events per execution (only the latest state matters: it is re-read from
Redis), and patches CR status in batches at a bounded rate. Entries are acknowledged only
after their batch is applied. Executions without a CR get a mirror CR when their
DurableWorkflow asks for it (`mirror: all | failed`).

The mirror runs only in the active replica (see `_activity`). Each replica reads under a
consumer name of its own, and each term (a start, a restart after an error) under a fresh
one: a term begins by claiming every entry left unacknowledged in the group (a replica
that died or was paused mid-batch, or our own previous term) into the new name, whose
first reads return its pending entries. So a takeover loses nothing.
"""

from ._batching import RateLimiter
from ._loop import StatusMirror
from ._writes import write_execution_status

__all__ = ["RateLimiter", "StatusMirror", "write_execution_status"]
