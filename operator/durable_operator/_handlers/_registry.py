"""The kopf handlers of the four kinds, registered into a registry per operator instance.

Every handler parses the CR through its pydantic model first: a CR the API server should
have refused (old CRD, no CEL) ends with a one-line reason in its status, not a traceback.
"""

from __future__ import annotations

import kopf

from .._models import GROUP, VERSION
from .._runtime import OperatorConfig
from ._executions import (
    execution_delete,
    execution_input_changed,
    execution_resume,
    execution_seen,
    execution_start,
    execution_ttl,
    finished,
)
from ._schedules import schedule_delete, schedule_reconcile, schedule_refresh, schedule_seen
from ._signals import signal_deliver
from ._workflows import workflow_reconcile, workflow_refresh, workflow_seen

WORKFLOWS = (GROUP, VERSION, "durableworkflows")
EXECUTIONS = (GROUP, VERSION, "durableexecutions")
SIGNALS = (GROUP, VERSION, "durablesignals")
SCHEDULES = (GROUP, VERSION, "durableschedules")


def build_registry(config: OperatorConfig) -> kopf.OperatorRegistry:
    """A fresh registry with every handler: one per operator instance (tests run several)."""
    registry = kopf.OperatorRegistry()
    on = kopf.on

    on.event(*WORKFLOWS, registry=registry)(workflow_seen)
    on.resume(*WORKFLOWS, registry=registry, id="reconcile")(workflow_reconcile)
    on.create(*WORKFLOWS, registry=registry, id="reconcile")(workflow_reconcile)
    on.update(*WORKFLOWS, registry=registry, id="reconcile", field="spec")(workflow_reconcile)
    kopf.timer(*WORKFLOWS, registry=registry, interval=config.status_interval, idle=None, id="refresh")(
        workflow_refresh
    )

    on.event(*EXECUTIONS, registry=registry)(execution_seen)
    on.create(*EXECUTIONS, registry=registry, id="start")(execution_start)
    on.resume(*EXECUTIONS, registry=registry, id="resume")(execution_resume)
    on.update(*EXECUTIONS, registry=registry, id="input", field="spec.input")(execution_input_changed)
    on.delete(*EXECUTIONS, registry=registry, id="cancel", optional=False)(execution_delete)
    kopf.timer(*EXECUTIONS, registry=registry, interval=config.ttl_interval, when=finished, id="ttl")(
        execution_ttl
    )

    on.create(*SIGNALS, registry=registry, id="deliver")(signal_deliver)
    on.resume(*SIGNALS, registry=registry, id="deliver")(signal_deliver)

    on.event(*SCHEDULES, registry=registry)(schedule_seen)
    on.create(*SCHEDULES, registry=registry, id="reconcile")(schedule_reconcile)
    on.resume(*SCHEDULES, registry=registry, id="reconcile")(schedule_reconcile)
    on.update(*SCHEDULES, registry=registry, id="reconcile", field="spec")(schedule_reconcile)
    on.delete(*SCHEDULES, registry=registry, id="remove", optional=False)(schedule_delete)
    kopf.timer(*SCHEDULES, registry=registry, interval=config.status_interval, id="refresh")(schedule_refresh)
    return registry
