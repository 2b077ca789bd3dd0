"""Crash soak: executions on real `durable worker` processes while the harness injects faults.

Faults, on a seeded random plan: SIGKILL of a worker (replaced at once), SIGSTOP of a worker past its
lease and visibility time-out then SIGCONT, a SIGKILL + restart of the store's redis-server (fsync-always
AOF), and a `CLIENT PAUSE <ms> ALL` longer than the workers' operation time-out. Step bodies count
their runs in a second redis-server that is never faulted (tests/apps/soak_app.py).

The check afterwards reads the store's histories and the side-effect log, not the code's word for it:
every execution completed exactly once with the result its input implies, compensations ran only
where the workflow asked for them, and every extra run of a step body lines up with a recorded fault
(a kill or a stop of the worker that ran it, or a store fault in that run's window); anything else
fails, and so does an execution that is stuck or lost.

    python tests/soak.py              # SOAK_EXECUTIONS (1000), SOAK_SECONDS (180), SOAK_SEED (random)
    make soak

tests/test_soak.py runs it small (a slow test, part of `make test`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(HERE) not in sys.path:  # run as a script: make `_redis_server` and `apps` importable
    sys.path.insert(0, str(HERE))

from _redis_server import RedisServer  # noqa: E402
from apps import soak_app  # noqa: E402
from durable import Durable, RedisStore, Status, StoreUnavailable  # noqa: E402
from durable._store._redis import RedisReplyError  # noqa: E402

DURABLE_BIN = str(Path(sys.executable).parent / "durable")
FINAL = {Status.COMPLETED, Status.FAILED, Status.CANCELLED}


@dataclass
class Config:
    executions: int = 250
    seconds: float = 45.0  # executions start, and faults happen, within this window
    seed: int = field(default_factory=lambda: random.randrange(1, 1_000_000))
    workers: int = 3
    concurrency: int = 16
    lease_ttl: float = 4.5
    visibility: float = 3.0
    op_timeout: float = 1.0  # the workers' RedisStore deadline per operation
    # CLIENT PAUSE: longer than op_timeout, so commits time out, but shorter than what is left of a
    # lease renewed every third of its ttl, so the writes that follow the pause still hold their fence.
    pause_s: float = 2.4
    stop_s: float = 6.0  # SIGSTOP: past lease_ttl and visibility
    kill_gap: tuple[float, float] = (2.5, 6.0)  # seconds between two SIGKILLs
    settle_s: float = 60.0  # after the window, how long executions may take to finish
    # Each store fault is also a window a body's commit may fall in: the fault's own span plus this.
    commit_slack_s: float = 0.5

    @classmethod
    def from_env(cls, **defaults: Any) -> Config:
        cfg = cls(**defaults)
        if os.environ.get("SOAK_EXECUTIONS"):
            cfg.executions = int(os.environ["SOAK_EXECUTIONS"])
        if os.environ.get("SOAK_SECONDS"):
            cfg.seconds = float(os.environ["SOAK_SECONDS"])
        if os.environ.get("SOAK_SEED"):
            cfg.seed = int(os.environ["SOAK_SEED"])
        return cfg

    @property
    def store_faults(self) -> int:
        """Restarts, pauses and stops each: one per started minute of the window."""
        return max(1, round(self.seconds / 60))


# ---------------------------------------------------------------------------- the plan
@dataclass
class Planned:
    eid: str
    workflow: str
    input: dict[str, Any]
    start_at: float  # seconds into the window
    signal_after: float | None = None  # flows: seconds after the start

    def expected(self) -> dict[str, Any]:
        n, v = self.input["n"], soak_app.value_of
        if self.workflow == "soak.flow":
            total = sum(v(n, s) for s in "abcd") + soak_app.signal_payload(n)["k"]
            return {"n": n, "sum": total}
        if self.input.get("fail_at") == "ship":
            return {"n": n, "status": "rolled back"}
        return {"n": n, "status": "shipped", "total": sum(v(n, s) for s in ("reserve", "charge", "ship"))}

    def expected_steps(self) -> list[str]:
        if self.workflow == "soak.flow":
            return ["a", "b", "nap", "c", "go", "d"]
        if self.input.get("fail_at") == "ship":
            return ["reserve", "charge", "ship", "rollback:charge", "rollback:reserve"]
        return ["reserve", "charge", "ship"]


def plan_executions(cfg: Config, rng: random.Random) -> list[Planned]:
    out = []
    for i in range(cfg.executions):
        # Mostly short bodies; some long ones, so that commits keep starting while a fault lasts.
        holds = [rng.randint(10, 80) if rng.random() < 0.75 else rng.randint(200, 1500) for _ in range(4)]
        start_at = cfg.seconds * i / cfg.executions
        eid = f"soak-{cfg.seed}-{i:05d}"
        kind = rng.random()
        if kind < 0.5:
            inp = {"n": i, "holds": holds, "sleep": round(rng.uniform(0.1, 1.0), 3)}
            out.append(Planned(eid, "soak.flow", inp, start_at, signal_after=rng.uniform(0.0, 1.5)))
        else:
            inp = {"n": i, "holds": holds, "fail_at": "ship" if kind < 0.75 else None}
            out.append(Planned(eid, "soak.saga", inp, start_at))
    return out


def plan_faults(cfg: Config, rng: random.Random) -> list[tuple[float, str]]:
    """(seconds into the window, fault) in time order; store faults and stops spread, kills between."""
    faults: list[tuple[float, str]] = []
    k = cfg.store_faults
    for j in range(k):
        span = cfg.seconds / k
        base = j * span
        faults.append((base + span * rng.uniform(0.2, 0.3), "restart"))
        faults.append((base + span * rng.uniform(0.45, 0.55), "pause"))
        faults.append((base + span * rng.uniform(0.7, 0.8), "stop"))
    t = rng.uniform(*cfg.kill_gap)
    while t < cfg.seconds * 0.95:
        faults.append((t, "kill"))
        t += rng.uniform(*cfg.kill_gap)
    return sorted(faults)


# ---------------------------------------------------------------------------- the harness
@dataclass
class Fault:
    kind: str  # kill, stop, restart, pause
    t0: float  # wall-clock time.time()
    t1: float
    pid: int | None = None
    note: str = ""


def _die_with_parent() -> None:
    """Linux: a worker gets SIGKILL when the harness dies, so a killed test leaves no workers behind."""
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


class Harness:
    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.rng = random.Random(cfg.seed)
        self.tmp = Path(tempfile.mkdtemp(prefix="durable-soak-"))
        self.store_server = RedisServer(persistent=True)
        self.effects_server = RedisServer()
        self.workers: list[subprocess.Popen[bytes]] = []
        self.all_workers: list[subprocess.Popen[bytes]] = []
        self.stopped: set[int] = set()
        self.resumed: dict[int, float] = {}
        self.loading_errors: Counter[str] = Counter()
        self.timeline: list[Fault] = []
        self.client: Durable | None = None
        self.t_start = 0.0

    # -------------------------------------------------------------- processes
    def spawn(self) -> subprocess.Popen[bytes]:
        env = {
            **os.environ,
            "SOAK_EFFECTS_URL": self.effects_server.url,
            "PYTHONPATH": str(HERE),
            "DURABLE_OP_TIMEOUT": str(self.cfg.op_timeout),
        }
        cmd = [
            DURABLE_BIN,
            "worker",
            "--app",
            "apps.soak_app",
            "--redis-url",
            self.store_server.url,
            "--concurrency",
            str(self.cfg.concurrency),
            "--lease-ttl",
            str(self.cfg.lease_ttl),
            "--visibility-timeout",
            str(self.cfg.visibility),
        ]
        n = len(self.all_workers)
        with open(self.tmp / f"worker-{n}.log", "wb") as errlog:
            proc = subprocess.Popen(
                cmd, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=errlog, preexec_fn=_die_with_parent
            )
        self.workers.append(proc)
        self.all_workers.append(proc)
        return proc

    def cleanup(self) -> None:
        for proc in self.all_workers:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGCONT)
                    proc.send_signal(signal.SIGTERM)
        for proc in self.all_workers:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.store_server.stop()
        self.effects_server.stop()

    # -------------------------------------------------------------- store calls that ride out faults
    async def call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        delay = 0.05
        deadline = time.monotonic() + 60
        while True:
            try:
                return await fn(*args, **kwargs)
            except (StoreUnavailable, RedisReplyError) as exc:
                # A restarted redis-server answers -LOADING while it replays its AOF; the store passes
                # that through as a plain error reply (a finding, counted), so retry it here too.
                if isinstance(exc, RedisReplyError):
                    if not str(exc).startswith("LOADING"):
                        raise
                    self.loading_errors[what] += 1
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)

    # -------------------------------------------------------------- the run
    async def run(self) -> Report:
        cfg = self.cfg
        print(
            f"soak: seed {cfg.seed} (SOAK_SEED={cfg.seed} to repeat), {cfg.executions} executions over "
            f"{cfg.seconds:g} s, {cfg.workers} workers, lease {cfg.lease_ttl:g} s, op time-out "
            f"{cfg.op_timeout:g} s, pause {cfg.pause_s:g} s, stop {cfg.stop_s:g} s; worker logs in {self.tmp} "
            "(kept if the check fails or SOAK_KEEP_LOGS is set)",
            flush=True,
        )
        executions = plan_executions(cfg, self.rng)
        faults = plan_faults(cfg, self.rng)
        self.store_server.start()
        self.effects_server.start()
        for _ in range(cfg.workers):
            self.spawn()
        self.client = Durable(
            store=RedisStore.from_url(self.store_server.url, op_timeout_s=2.0), allow_unregistered=True
        )
        began = time.monotonic()
        self.t_start = time.time()
        await asyncio.gather(self._start_all(executions), self._inject(faults))
        window_s = time.monotonic() - began
        finals = await self._settle(executions)
        settle_s = time.monotonic() - began - window_s
        report = await check(self, executions, finals)
        report.window_s, report.settle_s = window_s, settle_s
        await self.client.close()
        return report

    async def _start_all(self, executions: list[Planned]) -> None:
        assert self.client is not None
        signals: list[asyncio.Task[None]] = []
        for p in executions:
            delay = self.t_start + p.start_at - time.time()
            if delay > 0:
                await asyncio.sleep(delay)
            await self.call("start", self.client.start, p.workflow, p.input, execution_id=p.eid)
            if p.signal_after is not None:
                signals.append(asyncio.create_task(self._signal_later(p)))
        await asyncio.gather(*signals)

    async def _signal_later(self, p: Planned) -> None:
        assert self.client is not None and p.signal_after is not None
        await asyncio.sleep(p.signal_after)
        payload = soak_app.signal_payload(p.input["n"])
        await self.call("signal", self.client.signal, p.eid, "soak.go", payload, delivery_id=f"go-{p.eid}")

    def _effects(self) -> redis.Redis:
        return redis.Redis.from_url(self.effects_server.url, decode_responses=True)

    async def _victim(self) -> subprocess.Popen[bytes]:
        """A running, not stopped worker; mostly one that is inside a step body right now."""
        # Not one that is stopped or just resumed: let a resumed worker find out it lost its leases.
        now = time.time()
        live = [
            w
            for w in self.workers
            if w.poll() is None and w.pid not in self.stopped and now - self.resumed.get(w.pid, 0) > 3
        ] or [w for w in self.workers if w.poll() is None and w.pid not in self.stopped]
        if self.rng.random() < 0.75:
            effects = self._effects()
            try:
                for _ in range(50):
                    busy = {int(pid) for pid, n in effects.hgetall(soak_app.BUSY).items() if int(n) > 0}
                    hot = [w for w in live if w.pid in busy]
                    if hot:
                        return self.rng.choice(hot)
                    await asyncio.sleep(0.01)
            finally:
                effects.close()
        return self.rng.choice(live)

    async def _bodies_running(self, n: int, within: float) -> None:
        effects = self._effects()
        try:
            deadline = time.monotonic() + within
            while time.monotonic() < deadline:
                if sum(max(0, int(v)) for v in effects.hgetall(soak_app.BUSY).values()) >= n:
                    return
                await asyncio.sleep(0.01)
        finally:
            effects.close()

    async def _inject(self, faults: list[tuple[float, str]]) -> None:
        for at, kind in faults:
            delay = self.t_start + at - time.time()
            if delay > 0:
                await asyncio.sleep(delay)
            if kind == "kill":
                victim = await self._victim()
                t = time.time()
                victim.send_signal(signal.SIGKILL)
                await asyncio.to_thread(victim.wait, 10)
                self.workers.remove(victim)
                self.timeline.append(Fault("kill", t, t, victim.pid))
                self.spawn()
            elif kind == "stop":
                victim = await self._victim()
                t0 = time.time()
                victim.send_signal(signal.SIGSTOP)
                self.stopped.add(victim.pid)
                await asyncio.sleep(self.cfg.stop_s)
                victim.send_signal(signal.SIGCONT)
                self.stopped.discard(victim.pid)
                self.resumed[victim.pid] = time.time()
                self.timeline.append(Fault("stop", t0, time.time(), victim.pid))
            elif kind == "restart":
                t0 = time.time()
                self.store_server.kill()
                await asyncio.sleep(self.rng.uniform(0.2, 0.6))
                await asyncio.to_thread(self.store_server.start)
                self.timeline.append(Fault("restart", t0, time.time()))
            elif kind == "pause":
                await self._bodies_running(3, within=2.0)  # a pause that no commit meets tests nothing
                admin = redis.Redis.from_url(self.store_server.url)
                try:
                    t0 = time.time()
                    admin.execute_command("CLIENT", "PAUSE", int(self.cfg.pause_s * 1000), "ALL")
                finally:
                    admin.close()
                self.timeline.append(Fault("pause", t0, t0 + self.cfg.pause_s))
                await asyncio.sleep(self.cfg.pause_s)

    async def _settle(self, executions: list[Planned]) -> dict[str, Any]:
        assert self.client is not None
        deadline = time.monotonic() + self.cfg.settle_s
        finals: dict[str, Any] = {}
        while True:
            for p in executions:
                if p.eid not in finals:
                    record = await self.call("get", self.client.get_execution, p.eid)
                    if record is not None and record.status in FINAL:
                        finals[p.eid] = record
            if len(finals) == len(executions) or time.monotonic() > deadline:
                return finals
            await asyncio.sleep(0.5)


# ---------------------------------------------------------------------------- the check
@dataclass
class Report:
    seed: int
    executions: int
    kills: int = 0
    stops: int = 0
    restarts: int = 0
    pauses: int = 0
    workers_spawned: int = 0
    body_runs: int = 0
    double_runs: Counter[str] = field(default_factory=Counter)
    completed: int = 0
    failed: int = 0  # executions that ended FAILED
    wrong: int = 0  # executions that completed with a result their input does not imply
    unasked: int = 0  # compensations that ran although the workflow did not ask for them
    stuck: list[str] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    # Not outcome failures, but worth a look: ERROR lines in the worker logs (by exception) and
    # -LOADING answers the harness's own client had to retry after the restart.
    worker_errors: Counter[str] = field(default_factory=Counter)
    client_loading_retries: int = 0
    window_s: float = 0.0
    settle_s: float = 0.0
    check_s: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failures

    def table(self) -> str:
        explained = sum(n for cause, n in self.double_runs.items() if cause != "unexplained")
        rows = [
            ("seed", self.seed),
            ("executions", self.executions),
            ("completed, right result", self.completed),
            ("step body runs", self.body_runs),
            ("worker SIGKILLs", self.kills),
            ("worker SIGSTOPs", self.stops),
            ("redis restarts", self.restarts),
            ("client pauses", self.pauses),
            ("workers started", self.workers_spawned),
            ("double runs, explained", explained),
            *((f"  by {cause}", n) for cause, n in sorted(self.double_runs.items())),
            ("failed executions", self.failed),
            ("wrong results", self.wrong),
            ("unasked compensations", self.unasked),
            ("stuck", len(self.stuck)),
            ("lost", len(self.lost)),
            ("failures", len(self.failures)),
            ("worker ERROR logs", sum(self.worker_errors.values())),
            *((f"  {what}", n) for what, n in self.worker_errors.most_common(5)),
            ("client -LOADING retries", self.client_loading_retries),
            (
                "time (window/settle/check)",
                f"{self.window_s:.1f} s / {self.settle_s:.1f} s / {self.check_s:.1f} s",
            ),
        ]
        width = max(len(name) for name, _ in rows)
        lines = [f"{name:<{width}}  {value}" for name, value in rows]
        return "\n".join(lines)


_RUN_IN_ERROR = re.compile(r"\(run (\d+)\)")


def _starts(effects: redis.Redis, eid: str, body: str) -> list[dict[str, Any]]:
    events = (json.loads(e) for e in effects.lrange(soak_app.log_key(eid, body), 0, -1))
    return [e for e in events if e["ev"] == "start"]


def _short(error: dict[str, Any] | None) -> str:
    return "none" if not error else f"{error.get('type')}: {str(error.get('message'))[:160]}"


def _committed_run(step: Any) -> int | None:
    if step.status == "completed" and isinstance(step.result, dict) and "run" in step.result:
        return int(step.result["run"])
    if step.status == "failed":
        found = _RUN_IN_ERROR.search(json.dumps(step.error))
        return int(found.group(1)) if found else None
    return None


def _explain(h: Harness, pid: int, start: float, end: float | None) -> str | None:
    """The fault that accounts for an uncommitted run of a body, or None."""
    slack = h.cfg.commit_slack_s
    # The commit follows the body's end and takes at most the op time-out; a body cut short has no end.
    close = (end if end is not None else start) + h.cfg.op_timeout + slack
    for f in h.timeline:
        if f.kind == "kill" and f.pid == pid and start - slack <= f.t0 and (end is None or f.t0 <= close):
            return "kill"
    for f in h.timeline:
        if f.kind == "stop" and f.pid == pid and f.t0 <= close and f.t1 >= start - slack:
            return "stop"
    for f in h.timeline:
        if f.kind in ("restart", "pause") and f.t0 <= close and f.t1 + slack >= start:
            return f.kind
    return None


async def check(h: Harness, executions: list[Planned], finals: dict[str, Any]) -> Report:
    began = time.monotonic()
    assert h.client is not None
    rep = Report(seed=h.cfg.seed, executions=len(executions))
    for f in h.timeline:
        setattr(rep, f"{f.kind}s", getattr(rep, f"{f.kind}s") + 1)
    rep.workers_spawned = len(h.all_workers)
    effects = h._effects()
    runs = {k: int(v) for k, v in effects.hgetall(soak_app.RUNS).items()}
    rep.body_runs = sum(runs.values())
    known = {p.eid for p in executions}
    runs_of: dict[str, dict[str, int]] = {}
    for key, n in runs.items():
        eid, body = key.split("|", 1)
        runs_of.setdefault(eid, {})[body] = n
        if eid not in known:
            rep.failures.append(f"a body ran for an execution nobody started: {key}")
    for p in executions:
        record = finals.get(p.eid) or await h.call("get", h.client.get_execution, p.eid)
        if record is None:
            rep.lost.append(p.eid)
            rep.failures.append(f"{p.eid}: lost (no execution record)")
            continue
        if record.status not in FINAL:
            rep.stuck.append(p.eid)
            rep.failures.append(f"{p.eid}: stuck in {record.status.value} at {record.current_step!r}")
            continue
        if record.status != Status.COMPLETED or record.result != p.expected():
            rep.failures.append(
                f"{p.eid} ({p.workflow} {p.input}): {record.status.value}, result {record.result!r}, "
                f"error {_short(record.error)}; expected completed with {p.expected()!r}"
            )
            if record.status == Status.FAILED:
                rep.failed += 1
            else:
                rep.wrong += 1
        else:
            rep.completed += 1
        steps = await h.call("steps", h.client.list_step_results, p.eid)
        ids = [s.step_id for s in steps]
        if record.status == Status.COMPLETED and ids != p.expected_steps():
            rep.failures.append(f"{p.eid}: history {ids}, expected {p.expected_steps()}")
        audit = await h.call("audit", h.client.list_audit_entries, p.eid)
        finishes = [a.kind for a in audit if a.kind in ("completed", "failed", "cancelled")]
        if len(finishes) != 1:
            rep.failures.append(f"{p.eid}: finished {len(finishes)} times ({finishes})")
        # Compensations: only where the workflow asked for them (input "fail at ship"), and only once
        # ship's failure is in the history (a compensation that starts earlier ran for another reason).
        ship = next((s for s in steps if s.step_id == "ship" and s.status == "failed"), None)
        asked_at = ship.at.timestamp() if ship is not None and ship.at is not None else None
        for undo in ("undo-reserve", "undo-charge"):
            for i, ev in enumerate(_starts(effects, p.eid, undo), 1):
                if p.input.get("fail_at") != "ship" or asked_at is None or ev["at"] < asked_at - 0.01:
                    rep.unasked += 1
                    rep.failures.append(
                        f"{p.eid}: compensation {undo} run {i} at {ev['at'] - h.t_start:.3f} s was not "
                        f"asked for (input {p.input.get('fail_at')!r}, ship failure in history at "
                        f"{'never' if asked_at is None else f'{asked_at - h.t_start:.3f} s'})"
                    )
        # Step bodies: one run each, or an extra run that lines up with a fault.
        body_of = {"rollback:reserve": "undo-reserve", "rollback:charge": "undo-charge"}
        committed: dict[str, int | None] = {}
        for s in steps:
            if s.kind in ("step", "compensation"):
                committed[body_of.get(s.step_id, s.step_id)] = _committed_run(s)
        for body, run in committed.items():
            if run is None or not 1 <= run <= runs_of.get(p.eid, {}).get(body, 0):
                rep.failures.append(f"{p.eid}: step {body} committed run {run}, which the side effects lack")
        for body, n in runs_of.get(p.eid, {}).items():
            eid = p.eid
            if body not in committed:
                rep.failures.append(f"{p.eid}: body {body} ran {n}x but no such step is in the history")
            events = [json.loads(e) for e in effects.lrange(soak_app.log_key(eid, body), 0, -1)]
            starts = {i: e for i, e in enumerate((e for e in events if e["ev"] == "start"), 1)}
            if len(starts) != n:
                rep.failures.append(f"{p.eid}: body {body} counted {n} runs but logged {len(starts)}")
            ends = {e["run"]: e for e in events if e["ev"] == "end"}
            for run, ev in sorted(starts.items()):
                if run == committed.get(body):
                    continue
                end = ends.get(run, {}).get("at")
                cause = _explain(h, ev["pid"], ev["at"], end)
                rep.double_runs[cause or "unexplained"] += 1
                if cause is None:
                    rep.failures.append(
                        f"{p.eid}: body {body} run {run} (pid {ev['pid']}, {ev['at'] - h.t_start:.3f}"
                        f"-{'cut' if end is None else f'{end - h.t_start:.3f}'} s) did not commit and no "
                        f"fault explains it; committed run {committed.get(body)}"
                    )
    effects.close()
    rep.worker_errors = scan_worker_logs(h.tmp)
    rep.client_loading_retries = sum(h.loading_errors.values())
    rep.check_s = time.monotonic() - began
    return rep


_EXC_LINE = re.compile(r"^([A-Za-z_][\w.]*(?:Error|Exception|Unavailable|Lost)): (.{0,70})")


def scan_worker_logs(folder: Path) -> Counter[str]:
    """ERROR records in the workers' logs, keyed by the exception that ended their traceback."""
    found: Counter[str] = Counter()
    for log in sorted(folder.glob("worker-*.log")):
        pending = False
        for line in log.read_text(errors="replace").splitlines():
            if " ERROR " in line:
                if pending:
                    found["(no traceback)"] += 1
                pending = True
            elif pending and (m := _EXC_LINE.match(line)):
                found[f"{m.group(1)}: {m.group(2)}"] += 1
                pending = False
        if pending:
            found["(no traceback)"] += 1
    return found


def describe_failure(h: Harness, rep: Report, limit: int = 20) -> str:
    lines = [f"{len(rep.failures)} failure(s):", *(f"  {f}" for f in rep.failures[:limit])]
    lines.append("fault timeline (seconds into the window):")
    for f in h.timeline:
        who = f" pid {f.pid}" if f.pid else ""
        lines.append(f"  {f.kind:<8}{who} {f.t0 - h.t_start:8.3f} .. {f.t1 - h.t_start:8.3f}")
    lines.append(f"worker logs: {h.tmp}")
    return "\n".join(lines)


def run(cfg: Config) -> tuple[Report, str]:
    """Run one soak; returns the report and a human summary (table, plus failures and the timeline)."""
    h = Harness(cfg)
    try:
        rep = asyncio.run(h.run())
    finally:
        h.cleanup()
    text = rep.table()
    if not rep.ok:
        text += "\n" + describe_failure(h, rep)
    elif not os.environ.get("SOAK_KEEP_LOGS"):
        shutil.rmtree(h.tmp, ignore_errors=True)
    return rep, text


def main() -> int:
    cfg = Config.from_env(executions=1000, seconds=180.0, settle_s=120.0)
    rep, text = run(cfg)
    print(text, flush=True)
    return 0 if rep.ok else 1


if __name__ == "__main__":
    sys.exit(main())
