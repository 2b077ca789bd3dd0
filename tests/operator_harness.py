"""Shared helpers of the operator tests: what the API server would check, and a kmock cluster.

- `validate_cr` does what kube-apiserver does with a CR against the generated CRD: OpenAPI
  schema validation (jsonschema), strict field validation (unknown fields are errors, as
  with `kubectl apply`'s default `--validate=strict`), and the `x-kubernetes-validations`
  CEL rules (celpy), transition rules included when an old object is given.
- `Cluster` runs kmock's `KubernetesEmulator` on loopback with the resources kopf needs,
  fills in what the emulator leaves out (uid, generation, creationTimestamp,
  resourceVersion) and drives the real `kubectl` binary against it.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
import os
import shutil
import subprocess
import threading
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import celpy
import celpy.adapter
import jsonschema
import kmock
import yaml

ROOT = Path(__file__).resolve().parent.parent
CRDS = ROOT / "crds"
EXAMPLES = ROOT / "examples" / "k8s"


# ---------------------------------------------------------------- tools


def tool(name: str) -> str:
    """The repo's fetched binary (`.tools/bin/<name>`), never a system one."""
    local = ROOT / ".tools" / "bin" / name
    if local.is_file() and os.access(local, os.X_OK):
        return str(local)
    found = shutil.which(name)
    if found and Path(found).resolve().parent == local.parent.resolve():
        return found
    raise RuntimeError(f"{name} is missing: run `make tools` (scripts/fetch_tools.py .tools)")


# ---------------------------------------------------------------- schema + CEL


def load_crd(plural: str) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((CRDS / f"{plural}.durable.dev.yaml").read_text())
    return doc


def crd_schema(plural: str) -> dict[str, Any]:
    schema: dict[str, Any] = load_crd(plural)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


_CEL = celpy.Environment()


def _cel_eval(rule: str, self_value: Any, old_value: Any = None) -> bool:
    activation: dict[str, Any] = {"self": celpy.adapter.json_to_cel(self_value)}
    if old_value is not None:
        activation["oldSelf"] = celpy.adapter.json_to_cel(old_value)
    result = _CEL.program(_CEL.compile(rule)).evaluate(activation)
    if isinstance(result, Exception):
        raise result
    return bool(result)


def _walk(
    schema: dict[str, Any], value: Any, old: Any, path: str, errors: list[str], cel: bool = True
) -> None:
    preserve = schema.get("x-kubernetes-preserve-unknown-fields") is True
    for check in schema.get("x-kubernetes-validations", []) if cel else []:
        rule = check["rule"]
        if "oldSelf" in rule and old is None:
            continue  # a transition rule: only on updates
        try:
            ok = _cel_eval(rule, value, old)
        except Exception as exc:
            errors.append(f"{path or '<root>'}: CEL rule {rule!r} failed to evaluate: {exc}")
            continue
        if not ok:
            errors.append(f"{path or '<root>'}: {check.get('message', rule)}")
    if isinstance(value, dict):
        props: dict[str, Any] = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        for key, sub in value.items():
            sub_path = f"{path}.{key}" if path else key
            old_sub = old.get(key) if isinstance(old, dict) else None
            if key in props:
                _walk(props[key], sub, old_sub, sub_path, errors, cel)
            elif isinstance(extra, dict):
                _walk(extra, sub, old_sub, sub_path, errors, cel)
            elif not preserve and path != "metadata":
                errors.append(f'{sub_path}: unknown field "{key}"')
    elif isinstance(value, list) and "items" in schema:
        for index, item in enumerate(value):
            _walk(schema["items"], item, None, f"{path}[{index}]", errors, cel)


def validate_cr(obj: dict[str, Any], old: dict[str, Any] | None = None) -> list[str]:
    """Every reason the API server would refuse `obj` (empty when it is accepted)."""
    plural = obj["kind"].lower() + "s"
    schema = crd_schema(plural)
    errors = [
        f"{'.'.join(str(p) for p in err.absolute_path) or '<root>'}: {err.message}"
        for err in jsonschema.Draft7Validator(schema).iter_errors(obj)
    ]
    # Like the API server, CEL rules run only on objects that pass the OpenAPI schema.
    _walk(schema, obj, old, "", errors, cel=not errors)
    return errors


# ---------------------------------------------------------------- kmock cluster

GROUP = "durable.dev/v1alpha1"
KINDS = {
    "durableworkflows": "DurableWorkflow",
    "durableexecutions": "DurableExecution",
    "durablesignals": "DurableSignal",
    "durableschedules": "DurableSchedule",
}
_VERBS = ["get", "list", "watch", "create", "update", "patch", "delete"]


class Emulator(kmock.KubernetesEmulator):
    """The emulator plus what a real API server does besides: metadata on create and on spec changes,
    and a patch's `metadata.resourceVersion` as a precondition (409 Conflict when it is not the
    object's). It records every DurableExecution status it stores (`phases`, for tests that check
    a phase never goes backwards)."""

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        #: name -> [(phase, observedVersion)] of each DurableExecution, one entry per stored change.
        self.phases: dict[str, list[tuple[str | None, str | None]]] = {}
        self.conflicts = 0

    async def _handle(self, request: Any) -> Any:
        action = getattr(request, "action", None)
        data = getattr(request, "data", None)
        if request.resource is not None and isinstance(data, dict):
            if action == kmock.action.CREATE:
                meta = data.setdefault("metadata", {})
                meta.setdefault("uid", str(uuid.uuid4()))
                meta.setdefault("generation", 1)
                meta.setdefault(
                    "creationTimestamp", datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
                )
                meta["resourceVersion"] = str(next_version())
            elif action == kmock.action.UPDATE and request.name is not None:
                key = (request.resource, request.namespace, request.name)
                current = self.objects[key] if key in self.objects else None  # noqa: SIM401 - no .get()
                wanted = (data.get("metadata") or {}).get("resourceVersion")
                have = current.get("metadata", {}).get("resourceVersion") if current is not None else None
                if wanted is not None and current is not None and str(wanted) != str(have):
                    self.conflicts += 1
                    return await self._render_error(
                        kmock.KubernetesError(
                            status=409,
                            reason="Conflict",
                            message=f"the object has been modified (resourceVersion {have}, not {wanted})",
                        )
                    )
                meta = data.setdefault("metadata", {})
                if isinstance(meta, dict):
                    meta["resourceVersion"] = str(next_version())
                    if current is not None and "spec" in data and data["spec"] != current.get("spec"):
                        meta["generation"] = int(current.get("metadata", {}).get("generation", 1)) + 1
        response = await super()._handle(request)
        if (
            action in (kmock.action.CREATE, kmock.action.UPDATE)
            and request.resource is not None
            and request.resource.plural == "durableexecutions"
        ):
            self._record_phase(request)
        return response

    def _record_phase(self, request: Any) -> None:
        name = request.name or ((getattr(request, "data", None) or {}).get("metadata") or {}).get("name")
        key = (request.resource, request.namespace, name)
        if name is None or key not in self.objects or self.objects[key].deleted:
            return
        status = json.loads(json.dumps(self.objects[key].raw)).get("status") or {}
        entry = (status.get("phase"), status.get("observedVersion"))
        history = self.phases.setdefault(name, [])
        if not history or history[-1] != entry:
            history.append(entry)


_version = 1000


def next_version() -> int:
    global _version
    _version += 1
    return _version


class Cluster:
    """kmock's emulator on loopback, with kopf's backbone resources and the four durable kinds."""

    def __init__(self) -> None:
        self.emulator = Emulator()
        self.server: kmock.Server | None = None
        self._stack = contextlib.AsyncExitStack()
        self.kubeconfig: Path | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return str(self.server.url).rstrip("/")

    async def __aenter__(self) -> Cluster:
        em = self.emulator
        await self._stack.enter_async_context(em)
        self.server = await self._stack.enter_async_context(kmock.Server(em))
        res = em.resources
        res["v1/namespaces"] = kmock.ResourceInfo(kind="Namespace", namespaced=False, verbs=_VERBS)
        res["v1/events"] = kmock.ResourceInfo(kind="Event", namespaced=True, verbs=_VERBS)
        res["v1/secrets"] = kmock.ResourceInfo(kind="Secret", namespaced=True, verbs=_VERBS)
        res["apiextensions.k8s.io/v1/customresourcedefinitions"] = kmock.ResourceInfo(
            kind="CustomResourceDefinition", namespaced=False, verbs=_VERBS
        )
        res["kopf.dev/v1/clusterkopfpeerings"] = kmock.ResourceInfo(
            kind="ClusterKopfPeering", namespaced=False, verbs=_VERBS
        )
        res["apps/v1/deployments"] = kmock.ResourceInfo(
            kind="Deployment", namespaced=True, verbs=_VERBS, subresources=["status"]
        )
        res["batch/v1/jobs"] = kmock.ResourceInfo(
            kind="Job", namespaced=True, verbs=_VERBS, subresources=["status"]
        )
        res["v1/pods"] = kmock.ResourceInfo(
            kind="Pod", namespaced=True, verbs=_VERBS, subresources=["status"]
        )
        for plural, kind in KINDS.items():
            res[f"{GROUP}/{plural}"] = kmock.ResourceInfo(
                kind=kind,
                singular=kind.lower(),
                namespaced=True,
                verbs=_VERBS,
                subresources=["status"],
                categories=["durable"],
            )
        em.objects["v1/namespaces", None, "default"] = {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": "default", "uid": str(uuid.uuid4())},
        }
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._stack.aclose()

    # -- objects

    def add_peering(self, name: str) -> None:
        """The ClusterKopfPeering the chart renders: replicas of one operator meet in its status."""
        self.emulator.objects["kopf.dev/v1/clusterkopfpeerings", None, name] = {
            "apiVersion": "kopf.dev/v1",
            "kind": "ClusterKopfPeering",
            "metadata": {"name": name, "uid": str(uuid.uuid4())},
        }

    def peers(self, name: str) -> dict[str, Any]:
        for (resource, _ns, obj_name), obj in self.emulator.objects.items():
            if resource.plural == "clusterkopfpeerings" and obj_name == name and not obj.deleted:
                status: dict[str, Any] = json.loads(json.dumps(obj.raw)).get("status") or {}
                return status
        return {}

    def get(self, plural: str, name: str, namespace: str = "default") -> dict[str, Any] | None:
        for (resource, ns, obj_name), obj in self.emulator.objects.items():
            if resource.plural == plural and ns == namespace and obj_name == name and not obj.deleted:
                raw: dict[str, Any] = json.loads(json.dumps(obj.raw))
                return raw
        return None

    def events(self, namespace: str = "default") -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for (resource, ns, _name), obj in self.emulator.objects.items():
            if resource.plural == "events" and ns == namespace and not obj.deleted:
                out.append(json.loads(json.dumps(obj.raw)))
        return out

    async def wait_for(
        self,
        predicate: Callable[[], Any],
        timeout: float = 10.0,
        what: str = "condition",
    ) -> Any:
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"timed out after {timeout}s waiting for {what}")
            await asyncio.sleep(0.05)

    async def status(
        self, plural: str, name: str, check: Callable[[dict[str, Any]], bool], timeout: float = 10.0
    ) -> dict[str, Any]:
        def probe() -> dict[str, Any] | None:
            obj = self.get(plural, name)
            status = (obj or {}).get("status") or {}
            return status if obj is not None and check(status) else None

        try:
            result: dict[str, Any] = await self.wait_for(probe, timeout, f"{plural}/{name} status")
        except AssertionError:
            obj = self.get(plural, name)
            raise AssertionError(
                f"{plural}/{name}: status never matched; last: {(obj or {}).get('status')}"
            ) from None
        return result

    # -- kubectl

    async def kubectl(self, *args: str, input_text: str | None = None, check: bool = True) -> str:
        cmd = [tool("kubectl"), "--server", self.url, "--insecure-skip-tls-verify", "--token", "test", *args]
        env = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": os.environ.get("HOME", "/tmp"),
            "KUBECONFIG": "/dev/null",
        }
        proc = await asyncio.create_subprocess_exec(
            *cmd,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
        )
        out, err = await proc.communicate(input_text.encode() if input_text is not None else None)
        if check and proc.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({proc.returncode}): {err.decode()}")
        return out.decode() + err.decode()

    async def apply(self, manifest: str | Path, namespace: str = "default") -> str:
        if isinstance(manifest, Path):
            return await self.kubectl("apply", "--validate=false", "-n", namespace, "-f", str(manifest))
        return await self.kubectl(
            "apply", "--validate=false", "-n", namespace, "-f", "-", input_text=manifest
        )

    async def delete(self, plural: str, name: str, namespace: str = "default", wait: bool = False) -> str:
        return await self.kubectl("delete", plural, name, "-n", namespace, f"--wait={str(wait).lower()}")


def run_sync(cmd: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, check=False, **kwargs)


async def eventually(fn: Callable[[], Awaitable[Any]], timeout: float = 10.0, what: str = "condition") -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    last: Any = None
    while asyncio.get_running_loop().time() < deadline:
        last = await fn()
        if last:
            return last
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last value {last!r}")


@contextlib.asynccontextmanager
async def cluster() -> AsyncIterator[Cluster]:
    async with Cluster() as c:
        yield c


# ---------------------------------------------------------------- the operator in-process


def fast_config(cluster: Cluster, redis_url: str, **overrides: Any) -> Any:
    from durable_operator._runtime import OperatorConfig

    options: dict[str, Any] = {
        "redis_url": redis_url,
        "server": cluster.url,
        "token": "test",
        "insecure": True,
        "batch_window": 0.05,
        "max_patches_per_second": 500.0,
        "status_interval": 0.5,
        "ttl_interval": 0.3,
        "ref_grace_seconds": 2.0,
        "worker_redis_secret": "durable-redis",
    }
    options.update(overrides)
    return OperatorConfig(**options)


@contextlib.asynccontextmanager
async def operator(config: Any, **kwargs: Any) -> AsyncIterator[Any]:
    """Run the real kopf operator (the package's own `run`) in a task; yield its runtime."""
    from durable_operator._operator import make_runtime, run

    runtime = make_runtime(config)
    stop = asyncio.Event()
    ready = asyncio.Event()
    task = asyncio.create_task(run(config, stop_flag=stop, ready_flag=ready, runtime=runtime, **kwargs))
    try:
        done, _ = await asyncio.wait(
            [task, asyncio.create_task(ready.wait())], timeout=15, return_when="FIRST_COMPLETED"
        )
        if task in done:
            task.result()
            raise AssertionError("the operator stopped before it was ready")
        if not ready.is_set():
            raise AssertionError("the operator was not ready in 15s")
        yield runtime
    finally:
        stop.set()
        # kopf exits gracefully on the stop flag; a request retrying against the emulator can hold
        # it for seconds, and a loaded machine more. Cancel only after a long grace: cancelling kopf
        # mid-shutdown can strand a watcher in its scheduler's close, which then hangs the test's
        # event loop when it closes.
        try:
            await asyncio.wait_for(asyncio.shield(task), timeout=15.0)
        except (asyncio.CancelledError, Exception):
            task.cancel()
            with contextlib.suppress(BaseException):
                await task


@contextlib.asynccontextmanager
async def operator_replica(config: Any, **kwargs: Any) -> AsyncIterator[Any]:
    """Like `operator`, but on an event loop of its own in a thread: one replica of several.

    kopf's shutdown cancels every task of its loop that it did not see at its start, so two
    in-process replicas on one loop would cancel each other's (and kmock's) tasks.
    """
    from durable_operator._operator import make_runtime, run

    started = threading.Event()
    box: dict[str, Any] = {}

    async def main() -> None:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        ready = asyncio.Event()
        runtime = make_runtime(config)
        box.update(loop=loop, stop=stop, runtime=runtime)
        task = asyncio.create_task(run(config, stop_flag=stop, ready_flag=ready, runtime=runtime, **kwargs))
        waiter = asyncio.create_task(ready.wait())
        await asyncio.wait([task, waiter], timeout=15, return_when="FIRST_COMPLETED")
        waiter.cancel()
        box["ready"] = ready.is_set() and not task.done()
        started.set()
        await stop.wait()
        try:
            await asyncio.wait_for(asyncio.shield(task), timeout=5.0)
        except (asyncio.CancelledError, Exception):
            task.cancel()
            with contextlib.suppress(BaseException):
                await task

    thread = threading.Thread(target=lambda: asyncio.run(main()), name="operator-replica", daemon=True)
    thread.start()
    try:
        await asyncio.to_thread(started.wait, 20)
        if not box.get("ready"):
            raise AssertionError("the operator replica was not ready in 15s")
        yield box["runtime"]
    finally:
        if "loop" in box:
            box["loop"].call_soon_threadsafe(box["stop"].set)
        await asyncio.to_thread(thread.join, 20)


API = "durable.dev/v1alpha1"


def doc(kind: str, name: str, spec: dict[str, Any]) -> str:
    """A durable.dev/v1alpha1 object as JSON, for `Cluster.apply`."""
    return json.dumps({"apiVersion": API, "kind": kind, "metadata": {"name": name}, "spec": spec})
