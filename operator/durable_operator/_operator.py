"""One operator instance: kopf settings, login, start-up and clean-up around the handlers."""

from __future__ import annotations

import asyncio
import logging
from typing import Any, cast

import kopf

from durable import Durable, RedisStore

from ._activity import ActivityGate, own_identity, random_priority
from ._handlers import build_registry
from ._kube import Kube
from ._mirror import StatusMirror
from ._runtime import FINALIZER, OperatorConfig, Runtime

log = logging.getLogger("durable_operator")


class Memo(kopf.Memo):
    """kopf's memo with the runtime the handlers share."""

    runtime: Runtime


def settings_for(config: OperatorConfig, peering_name: str | None) -> kopf.OperatorSettings:
    settings = kopf.OperatorSettings()
    # Progress and diff-base go to annotations: the structural status schema would prune `status.kopf`.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="durable.dev")
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix="durable.dev", key="last-handled-configuration"
    )
    settings.persistence.finalizer = FINALIZER
    settings.posting.reporting_component = "durable-operator"
    settings.posting.level = logging.WARNING
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.networking.error_backoffs = [1, 2, 5, 10]
    if peering_name:
        settings.peering.name = peering_name
        settings.peering.clusterwide = True
        settings.peering.mandatory = True
    return settings


def make_registry(config: OperatorConfig) -> kopf.OperatorRegistry:
    registry = build_registry(config)

    @kopf.on.login(registry=registry)
    def login(memo: kopf.Memo, **kwargs: Any) -> kopf.ConnectionInfo | None:
        info: kopf.ConnectionInfo | None
        if config.server:
            info = kopf.ConnectionInfo(
                server=config.server,
                insecure=config.insecure or None,
                token=config.token,
                scheme="Bearer" if config.token else None,
                default_namespace="default",
            )
        else:
            info = kopf.login_with_service_account(**kwargs) or kopf.login_with_kubeconfig(**kwargs)
        memo.runtime.login = info
        return info

    @kopf.on.startup(registry=registry)
    async def startup(memo: kopf.Memo, **_: Any) -> None:
        rt: Runtime = memo.runtime
        if rt.activity is None:  # not built by `run` (a registry used on its own): one standalone replica
            rt.mirror = StatusMirror(rt)
            rt.activity = ActivityGate(rt.mirror, identity=own_identity(), priority=0, peering_name=None)
        # The mirror starts and stops with this replica's activity, not here (see _activity).
        rt.activity.start()

    @kopf.on.cleanup(registry=registry)
    async def cleanup(memo: kopf.Memo, **_: Any) -> None:
        rt: Runtime = memo.runtime
        if rt.activity is not None:
            await rt.activity.stop()
        await rt.kube.close()

    @kopf.on.probe(registry=registry, id="statusMirror")
    def mirror_probe(memo: kopf.Memo, **_: Any) -> dict[str, Any]:
        rt: Runtime = memo.runtime
        mirror = rt.mirror
        return {
            "active": bool(rt.activity and rt.activity.active),
            "healthy": bool(mirror is None or mirror.healthy),
            "batches": mirror.batches if mirror else 0,
        }

    return registry


def make_runtime(config: OperatorConfig, durable: Durable | None = None) -> Runtime:
    holder: dict[str, Runtime] = {}
    kube = Kube(lambda: holder["rt"].login)
    if durable is None:
        durable = Durable(
            store=RedisStore.from_url(config.redis_url), allow_unregistered=True, actor="durable-operator"
        )
    rt = Runtime(config=config, durable=durable, kube=kube)
    holder["rt"] = rt
    return rt


async def run(
    config: OperatorConfig,
    *,
    stop_flag: asyncio.Event | asyncio.Future[Any] | None = None,
    ready_flag: asyncio.Event | None = None,
    peering_name: str | None = None,
    liveness_endpoint: str | None = None,
    namespaces: list[str] | None = None,
    runtime: Runtime | None = None,
    identity: str | None = None,
    priority: int | None = None,
) -> None:
    """Run the operator until `stop_flag` is set (or the process is signalled).

    With `peering_name`, replicas share kopf's ClusterKopfPeering and the one with the highest
    `priority` is active (default: a random priority, since kopf pauses every replica of a tie).
    `identity` names this replica among its peers (default: host or pod name, start time, random).
    """
    rt = runtime or make_runtime(config)
    identity = identity or own_identity()
    if priority is None:
        priority = random_priority() if peering_name else 0
    watched = tuple(namespaces or ())
    rt.mirror = StatusMirror(rt, replica=identity, namespaces=watched)
    rt.activity = ActivityGate(
        rt.mirror,
        identity=identity,
        priority=priority,
        peering_name=peering_name,
        namespaces=watched,
        interval=config.activity_interval,
    )
    log.info("operator replica %s (peering %s, priority %d)", identity, peering_name or "off", priority)
    memo = Memo()
    memo.runtime = rt
    try:
        await kopf.operator(
            registry=make_registry(config),
            settings=settings_for(config, peering_name),
            standalone=peering_name is None,
            peering_name=peering_name,
            identity=cast(Any, identity),  # kopf's Identity is a NewType of str, not exported
            priority=priority,
            clusterwide=not namespaces,
            namespaces=namespaces or (),
            liveness_endpoint=liveness_endpoint,
            stop_flag=stop_flag,
            ready_flag=ready_flag,
            memo=memo,
        )
    finally:
        await rt.kube.close()
        await rt.durable.close()
