"""A small Kubernetes API client for what kopf's handlers do not cover.

The status mirror, the worker Deployments and the Events are written outside kopf's
handler context, so they go through this client. It uses the same `kopf.ConnectionInfo`
that the operator's login handler returned (service account, kubeconfig, or a test
server), and logs in again when the API server answers 401.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import uuid
from collections.abc import Callable
from typing import Any

import aiohttp
import kopf

log = logging.getLogger("durable_operator.kube")

JsonDict = dict[str, Any]


class KubeError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.message = message

    @property
    def transient(self) -> bool:
        return self.status in (408, 425, 429) or self.status >= 500


def resource_path(
    group_version: str,
    plural: str,
    namespace: str | None = None,
    name: str | None = None,
    sub: str | None = None,
) -> str:
    root = "/api/v1" if group_version == "v1" else f"/apis/{group_version}"
    path = root + (f"/namespaces/{namespace}" if namespace else "") + f"/{plural}"
    if name:
        path += f"/{name}"
        if sub:
            path += f"/{sub}"
    return path


class Kube:
    """Async JSON calls to the API server with the operator's credentials."""

    def __init__(self, credentials: Callable[[], kopf.ConnectionInfo | None], timeout: float = 30.0) -> None:
        self._credentials = credentials
        self._timeout = timeout
        self._session: aiohttp.ClientSession | None = None
        self._info: kopf.ConnectionInfo | None = None
        self._lock = asyncio.Lock()
        self._closed = False

    async def _open(self, renew: bool = False) -> tuple[aiohttp.ClientSession, kopf.ConnectionInfo]:
        async with self._lock:
            if self._closed:  # the operator is stopping: a handler still running must not reopen it
                raise KubeError(503, "the operator is stopping: its API client is closed")
            if renew or self._session is None or self._info is None:
                if self._session is not None:
                    await self._session.close()
                info = self._credentials()
                if info is None:
                    raise KubeError(401, "the operator has not logged in to the API server yet")
                headers = {"Accept": "application/json", "User-Agent": "durable-operator"}
                if info.token:
                    headers["Authorization"] = f"{info.scheme or 'Bearer'} {info.token}"
                auth = aiohttp.BasicAuth(info.username, info.password or "") if info.username else None
                connector = aiohttp.TCPConnector(ssl=info.as_ssl_context(), limit=32)
                self._session = aiohttp.ClientSession(
                    base_url=None,
                    headers=headers,
                    auth=auth,
                    connector=connector,
                    timeout=aiohttp.ClientTimeout(total=self._timeout),
                )
                self._info = info
            return self._session, self._info

    async def close(self) -> None:
        async with self._lock:
            self._closed = True
            if self._session is not None:
                await self._session.close()
            self._session = None

    async def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        content_type: str = "application/json",
        **params: str,
    ) -> Any:
        renewed = False
        while True:
            session, info = await self._open()
            url = info.server.rstrip("/") + path
            headers = {"Content-Type": content_type} if body is not None else {}
            try:
                async with session.request(
                    method, url, json=body, headers=headers, params=params or None
                ) as resp:
                    if resp.status == 401 and not renewed:
                        renewed = True
                        await self._open(renew=True)
                        continue
                    text = await resp.text()
                    if resp.status >= 400:
                        raise KubeError(resp.status, _message(text))
                    return _json(text)
            except (TimeoutError, aiohttp.ClientConnectionError) as exc:
                raise KubeError(503, f"{type(exc).__name__}: {exc}") from exc

    # -- conveniences

    async def get(self, path: str) -> JsonDict | None:
        try:
            obj: JsonDict = await self.request("GET", path)
        except KubeError as exc:
            if exc.status == 404:
                return None
            raise
        return obj

    async def list(self, path: str, label_selector: str | None = None) -> list[JsonDict]:
        params = {"labelSelector": label_selector} if label_selector else {}
        data = await self.request("GET", path, **params)
        items: list[JsonDict] = list((data or {}).get("items") or [])
        if label_selector:  # also filter here: not every server (or emulator) does
            wanted = dict(part.split("=", 1) for part in label_selector.split(","))
            items = [
                i
                for i in items
                if all(((i.get("metadata") or {}).get("labels") or {}).get(k) == v for k, v in wanted.items())
            ]
        return items

    async def create(self, path: str, body: JsonDict) -> JsonDict:
        obj: JsonDict = await self.request("POST", path, body)
        return obj

    async def merge_patch(self, path: str, body: JsonDict) -> JsonDict:
        obj: JsonDict = await self.request("PATCH", path, body, content_type="application/merge-patch+json")
        return obj

    async def delete(self, path: str, **params: str) -> bool:
        try:
            await self.request("DELETE", path, **params)
        except KubeError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    async def event(self, obj: JsonDict, type_: str, reason: str, message: str) -> None:
        """Post a core/v1 Event about `obj`; failures are logged, never raised."""
        meta = obj.get("metadata") or {}
        namespace = meta.get("namespace") or "default"
        now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {
                "name": f"{meta.get('name', 'object')}.{uuid.uuid4().hex[:12]}",
                "namespace": namespace,
            },
            "involvedObject": {
                "apiVersion": obj.get("apiVersion"),
                "kind": obj.get("kind"),
                "name": meta.get("name"),
                "namespace": namespace,
                "uid": meta.get("uid"),
            },
            "type": type_,
            "reason": reason,
            "message": message[:1024],
            "source": {"component": "durable-operator"},
            "reportingComponent": "durable-operator",
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        try:
            await self.create(resource_path("v1", "events", namespace), body)
        except KubeError as exc:
            log.warning("could not post event %s on %s/%s: %s", reason, namespace, meta.get("name"), exc)


def _json(text: str) -> Any:
    import json

    return json.loads(text) if text.strip() else None


def _message(text: str) -> str:
    try:
        data = _json(text)
    except ValueError:
        return text[:300]
    if isinstance(data, dict) and data.get("message"):
        return str(data["message"])[:300]
    return text[:300]
