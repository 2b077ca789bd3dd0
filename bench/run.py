"""`make bench`: the five standard workloads and the memory figures, one JSON line each on stdout.

Starts its own redis-server on a free port and real `durable worker` processes (the default
setup for one machine), runs W1-W5 and the memory measurements as issue 5 defines them, then
stops everything it started. Logs go to stderr; stdout holds only the JSON lines.

Environment: SCALE (default 1.0; 0.1 for a quick run) scales the counts, BENCH_WORKERS (default 2)
the number of worker processes, BENCH_CONCURRENCY (default 64) executions in flight per worker,
BENCH_ONLY (e.g. "W1,W2") a subset of the workloads (for profiling).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import logging
import os
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import redis
import uvloop

from durable import Durable, RedisStore

ROOT = Path(__file__).resolve().parents[1]
BENCH = Path(__file__).resolve().parent
DURABLE_BIN = str(Path(sys.executable).parent / "durable")

log = logging.getLogger("bench")


def _load_redis_server() -> Any:
    """tests/_redis_server.py's RedisServer, imported by path (tests/ is not a package)."""
    spec = importlib.util.spec_from_file_location("_bench_redis_server", ROOT / "tests" / "_redis_server.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.RedisServer


# ---------------------------------------------------------------------------- helpers
def scaled(n: int, scale: float, minimum: int = 1) -> int:
    return max(minimum, round(n * scale))


def pct(values: list[float], q: float) -> float:
    """The q-th percentile (0-100), nearest-rank on the sorted values."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def ms(seconds: float) -> float:
    return round(seconds * 1000, 3)


def emit(line: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps({"system": "durable", **line}) + "\n")
    sys.stdout.flush()
    log.info("%s", json.dumps(line))


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


async def gather_limited(calls: list[Callable[[], Awaitable[Any]]], limit: int) -> list[Any]:
    sem = asyncio.Semaphore(limit)

    async def one(call: Callable[[], Awaitable[Any]]) -> Any:
        async with sem:
            return await call()

    return await asyncio.gather(*(one(c) for c in calls))


class Workers:
    """Real `durable worker` subprocesses serving bench_app."""

    def __init__(self, redis_url: str, count: int, concurrency: int) -> None:
        self.redis_url = redis_url
        self.count = count
        self.concurrency = concurrency
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self) -> None:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(BENCH), os.environ.get("PYTHONPATH", "")])}
        for _ in range(self.count):
            cmd = [
                DURABLE_BIN,
                "worker",
                "--app",
                "bench_app",
                "--redis-url",
                self.redis_url,
                "--concurrency",
                str(self.concurrency),
                "--lease-ttl",
                "30",
                "--visibility-timeout",
                "60",
                "--log-level",
                "WARNING",
            ]
            self.procs.append(
                subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=None)
            )

    def alive(self) -> list[subprocess.Popen[bytes]]:
        return [p for p in self.procs if p.poll() is None]

    def stop_one(self, proc: subprocess.Popen[bytes]) -> None:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            self.stop_one(proc)


@contextlib.contextmanager
def redis_server() -> Iterator[Any]:
    server = _load_redis_server()()
    server.start()
    try:
        yield server
    finally:
        server.stop()


# ---------------------------------------------------------------------------- workloads
async def w1_latency(d: Durable, scale: float) -> dict[str, Any]:
    warmup, measured = scaled(20, scale, 5), scaled(200, scale, 20)
    for i in range(warmup):
        await d.start_and_wait("bench.three_steps", i, timeout=30)
    samples: list[float] = []
    for i in range(measured):
        t0 = time.perf_counter()
        await d.start_and_wait("bench.three_steps", i, timeout=30)
        samples.append(time.perf_counter() - t0)
    return {
        "workload": "W1",
        "p50_ms": ms(pct(samples, 50)),
        "p99_ms": ms(pct(samples, 99)),
        "mean_ms": ms(statistics.fmean(samples)),
        "params": {"warmup": warmup, "runs": measured, "steps": 3},
    }


def cpu_s(pid: int) -> float:
    """User + system CPU seconds a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def w2_throughput(d: Durable, scale: float, workers: Workers, redis_pid: int) -> dict[str, Any]:
    count = scaled(1000, scale, 20)
    pids = [p.pid for p in workers.alive()]
    cpu0 = ([cpu_s(p) for p in pids], cpu_s(redis_pid), time.process_time())
    t0 = time.perf_counter()
    ids = await gather_limited([lambda i=i: d.start("bench.three_steps", i) for i in range(count)], 256)
    submitted = time.perf_counter()
    await gather_limited([lambda e=e: d.wait(e, timeout=120) for e in ids], 1000)
    wall = time.perf_counter() - t0
    worker_cpu = sum(cpu_s(p) for p in pids) - sum(cpu0[0])
    return {
        "workload": "W2",
        "wall_s": round(wall, 3),
        "executions_per_s": round(count / wall, 1),
        "steps_per_s": round(3 * count / wall, 1),
        "submit_s": round(submitted - t0, 3),
        "worker_processes": len(pids),
        # CPU per execution, by process kind: robust to a busy machine, unlike the wall figures.
        "cpu_ms_per_exec": {
            "workers": round(worker_cpu / count * 1000, 3),
            "redis": round((cpu_s(redis_pid) - cpu0[1]) / count * 1000, 3),
            "client": round((time.process_time() - cpu0[2]) / count * 1000, 3),
        },
        "params": {"executions": count, "steps": 3, "concurrency_per_worker": workers.concurrency},
    }


async def w3_timers(d: Durable, scale: float) -> dict[str, Any]:
    """Lateness = completion (result in the client's hand) - start (start() returned) - 1 s.

    Also reported: the timer's own lateness, from the step records (the time the woken activation
    recorded the sleep as done minus the sleep's due time), which leaves out the start-up burst.
    """
    count = scaled(100, scale, 10)
    sleep_s = 1.0

    async def one(i: int) -> tuple[str, float, float, float]:
        eid = await d.start("bench.sleep_then_step", sleep_s)
        t0 = time.time()
        await d.wait(eid, timeout=60)
        t1 = time.time()
        return eid, t1 - t0 - sleep_s, t0, t1

    done = await asyncio.gather(*(one(i) for i in range(count)))
    lateness = [late for _, late, _, _ in done]
    wake: list[float] = []
    # Where the lateness goes, stage by stage (wall clock; the workers' clocks are this machine's):
    # start() returned -> sleep's due time - 1 s (the first activation reached the sleep), due ->
    # woken activation recorded the sleep, -> the step after it recorded, -> execution finished, ->
    # the client had the result.
    stages: dict[str, list[float]] = {k: [] for k in ("to_sleep", "wake", "step", "finish", "notify")}
    for eid, _, t0, t1 in done:
        until = woke = step_at = None
        for step in await d.list_step_results(eid):
            if step.kind == "sleep" and step.at is not None and "until" in step.meta:
                until = int(step.meta["until"]) / 1000
                woke = step.at.timestamp()
                wake.append(woke - until)
            elif step.at is not None:
                step_at = step.at.timestamp()
        rec = await d.get_execution(eid)
        if until is None or woke is None or step_at is None or rec is None or rec.finished_at is None:
            continue
        finished = rec.finished_at.timestamp()
        stages["to_sleep"].append(until - sleep_s - t0)
        stages["wake"].append(woke - until)
        stages["step"].append(step_at - woke)
        stages["finish"].append(finished - step_at)
        stages["notify"].append(t1 - finished)
    return {
        "workload": "W3",
        "lateness_p50_ms": ms(pct(lateness, 50)),
        "lateness_p99_ms": ms(pct(lateness, 99)),
        "lateness_max_ms": ms(max(lateness)),
        "timer_wake_p50_ms": ms(pct(wake, 50)),
        "timer_wake_p99_ms": ms(pct(wake, 99)),
        "stages_p50_ms": {k: ms(pct(v, 50)) for k, v in stages.items()},
        "params": {"executions": count, "sleep_s": sleep_s},
    }


async def w4_signals(d: Durable, scale: float, raw: redis.Redis) -> dict[str, Any]:
    count = scaled(100, scale, 10)
    ids = [await d.start("bench.signal_then_step") for _ in range(count)]
    deadline = time.monotonic() + 60
    while True:
        waiting = 0
        for eid in ids:
            rec = await d.get_execution(eid)
            if rec is not None and rec.status.value == "waiting":
                waiting += 1
        if waiting == count:
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {waiting}/{count} executions reached their wait")
        await asyncio.sleep(0.05)
    samples: list[float] = []
    for i, eid in enumerate(ids):
        t0 = time.perf_counter()
        await d.signal(eid, "go", i)
        await d.wait(eid, timeout=30)
        samples.append(time.perf_counter() - t0)
    return {
        "workload": "W4",
        "p50_ms": ms(pct(samples, 50)),
        "p99_ms": ms(pct(samples, 99)),
        "mean_ms": ms(statistics.fmean(samples)),
        "params": {"executions": count},
    }


async def w5_history(d: Durable, scale: float) -> dict[str, Any]:
    """W5a: one execution of 1,000 steps; W5b: one execution of 100 sleeps of 0 s. Each is run
    `RUNS` times and reported as the median run (all runs are listed), which keeps one burst of load
    on a shared machine from deciding the figure.

    W5b's first and last 10 wake-ups: each 0 s sleep's record is rewritten as completed by the
    activation that woke up after it, so at[k + 10] - at[k] over those records is the time of 10
    suspend + wake-up rounds (a difference of two millisecond times: +-1 ms). Median over the runs.
    """
    runs = 3
    steps = scaled(1000, scale, 50)
    sleeps = scaled(100, scale, 30)

    async def timed(workflow: str, count: int) -> tuple[float, str]:
        t = time.perf_counter()
        eid = await d.start(workflow, count)
        await d.wait(eid, timeout=300)
        return time.perf_counter() - t, eid

    w5a = [(await timed("bench.many_steps", steps))[0] for _ in range(runs)]
    w5a_async = [(await timed("bench.many_async_steps", steps))[0] for _ in range(runs)]
    w5b: list[float] = []
    firsts: list[float] = []
    lasts: list[float] = []
    for _ in range(runs):
        took, eid = await timed("bench.many_sleeps", sleeps)
        w5b.append(took)
        records = sorted(
            (s for s in await d.list_step_results(eid) if s.kind == "sleep"), key=lambda s: s.seq
        )
        at_ms = [s.at.timestamp() * 1000 for s in records if s.at is not None]
        firsts.append(at_ms[10] - at_ms[0])
        lasts.append(at_ms[-1] - at_ms[-11])
    first10, last10 = statistics.median(firsts), statistics.median(lasts)
    return {
        "workload": "W5",
        "w5a_s": round(statistics.median(w5a), 3),
        "w5a_async_bodies_s": round(statistics.median(w5a_async), 3),
        "w5b_s": round(statistics.median(w5b), 3),
        "w5b_first10_wakeups_ms": round(first10, 1),
        "w5b_last10_wakeups_ms": round(last10, 1),
        "w5b_last_over_first": round(last10 / first10, 2) if first10 > 0 else None,
        "runs": {
            "w5a_s": [round(x, 3) for x in w5a],
            "w5b_s": [round(x, 3) for x in w5b],
            "w5b_first10_ms": firsts,
            "w5b_last10_ms": lasts,
        },
        "params": {"steps": steps, "sleeps": sleeps, "runs": runs},
    }


def _exec_keys(raw: redis.Redis, prefix: str, eid: str) -> list[str]:
    return [k.decode() for k in raw.scan_iter(match=f"{prefix}:{{{eid}}}:*", count=1000)]


async def memory_redis(d: Durable, scale: float, raw: redis.Redis, store: RedisStore) -> dict[str, Any]:
    """Redis bytes per finished W1 execution once retention has run (run first, on a quiet server).

    Retention here is `compact_finished`: a completed execution keeps its record (status, input, result,
    times) and its index entries, and loses its history (step records, audit stream, signal keys). The
    figure is the INFO used_memory growth over `n` executions divided by `n`, so it also counts each
    execution's share of the shared streams (status events, which are capped) and indexes.
    """
    n = scaled(1000, scale, 50)
    before = int(raw.info("memory")["used_memory"])
    ids = await gather_limited([lambda i=i: d.start("bench.three_steps", i) for i in range(n)], 256)
    await gather_limited([lambda e=e: d.wait(e, timeout=120) for e in ids], 1000)
    after_run = int(raw.info("memory")["used_memory"])
    sample = ids[: min(50, len(ids))]

    def key_bytes(eids: list[str]) -> float:
        total = 0
        for eid in eids:
            for key in _exec_keys(raw, store.keys.prefix, eid):
                total += int(raw.memory_usage(key, samples=0) or 0)
        return total / len(eids)

    keys_before_retention = key_bytes(sample)
    now = int(time.time() * 1000)
    retained = await store.compact_finished(now + 1, now, limit=10 * n + 10_000)
    after_retention = int(raw.info("memory")["used_memory"])
    keys_after_retention = key_bytes(sample)
    return {
        "workload": "memory.redis",
        "bytes_per_finished_exec": round((after_retention - before) / n, 1),
        "bytes_per_finished_exec_before_retention": round((after_run - before) / n, 1),
        "exec_key_bytes_before_retention": round(keys_before_retention, 1),
        "exec_key_bytes_after_retention": round(keys_after_retention, 1),
        "retention": "compact_finished (record kept, history dropped)",
        "retention_touched": retained,
        "params": {"executions": n, "workflow": "bench.three_steps"},
    }


async def memory_worker(
    d: Durable, scale: float, raw: redis.Redis, workers: Workers, store: RedisStore
) -> dict[str, Any]:
    """RSS of one worker process holding 10,000 sleeping executions (the other workers are stopped)."""
    alive = workers.alive()
    for proc in alive[1:]:
        workers.stop_one(proc)
    holder = alive[0]
    idle_kb = rss_kb(holder.pid)
    sleepers = scaled(10_000, scale, 100)
    timers_before = int(raw.zcard(store.keys.timers()))
    await gather_limited([lambda: d.start("bench.sleeper", 3600.0) for _ in range(sleepers)], 256)
    deadline = time.monotonic() + 300
    while int(raw.zcard(store.keys.timers())) - timers_before < sleepers:
        if time.monotonic() > deadline:
            raise RuntimeError("the sleepers never all parked")
        await asyncio.sleep(0.1)
    await asyncio.sleep(0.5)
    holding_kb = rss_kb(holder.pid)
    return {
        "workload": "memory.worker",
        "rss_mb": round(holding_kb / 1024, 1),
        "rss_idle_mb": round(idle_kb / 1024, 1),
        "params": {"sleeping_executions": sleepers, "worker_processes": 1},
    }


# ---------------------------------------------------------------------------- main
async def run_all(url: str, scale: float, workers: Workers, redis_pid: int) -> None:
    sys.path.insert(0, str(BENCH))
    import bench_app

    store = RedisStore.from_url(url)
    d = Durable(
        store=store,
        workflows=[
            bench_app.three_steps,
            bench_app.sleep_then_step,
            bench_app.signal_then_step,
            bench_app.many_steps,
            bench_app.many_async_steps,
            bench_app.many_sleeps,
            bench_app.sleeper,
        ],
    )
    raw = redis.Redis.from_url(url)
    only = {w.strip() for w in os.environ.get("BENCH_ONLY", "").split(",") if w.strip()}

    def wanted(name: str) -> bool:
        return not only or name in only

    try:
        # Workers are up once an execution completes.
        await d.start_and_wait("bench.three_steps", 0, timeout=60)
        lines: dict[str, dict[str, Any]] = {}
        if wanted("memory.redis"):
            lines["memory.redis"] = await memory_redis(d, scale, raw, store)
        if wanted("W1"):
            emit(await w1_latency(d, scale))
        if wanted("W2"):
            emit(await w2_throughput(d, scale, workers, redis_pid))
        if wanted("W3"):
            emit(await w3_timers(d, scale))
        if wanted("W4"):
            emit(await w4_signals(d, scale, raw))
        if wanted("W5"):
            emit(await w5_history(d, scale))
        if "memory.redis" in lines:
            emit(lines["memory.redis"])
        if wanted("memory.worker"):
            emit(await memory_worker(d, scale, raw, workers, store))
    finally:
        raw.close()
        await d.close()


def main() -> int:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s bench: %(message)s")
    scale = float(os.environ.get("SCALE", "1.0"))
    count = int(os.environ.get("BENCH_WORKERS", "2"))
    concurrency = int(os.environ.get("BENCH_CONCURRENCY", "64"))
    log.info("scale %s, %d worker process(es), concurrency %d", scale, count, concurrency)
    with redis_server() as server:
        workers = Workers(server.url, count, concurrency)
        workers.start()
        try:
            # The client runs on uvloop too, as the workers do.
            with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                runner.run(run_all(server.url, scale, workers, server.proc.pid))
        finally:
            workers.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
