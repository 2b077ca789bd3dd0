"""The Kubernetes operator for durable workflows: CRDs, kopf handlers, status write-back."""

from ._models import (
    API_VERSION,
    GROUP,
    KINDS,
    VERSION,
    DurableExecutionSpec,
    DurableExecutionStatus,
    DurableScheduleSpec,
    DurableScheduleStatus,
    DurableSignalSpec,
    DurableSignalStatus,
    DurableWorkflowSpec,
    DurableWorkflowStatus,
    Phase,
)

__all__ = [
    "API_VERSION",
    "GROUP",
    "KINDS",
    "VERSION",
    "DurableExecutionSpec",
    "DurableExecutionStatus",
    "DurableScheduleSpec",
    "DurableScheduleStatus",
    "DurableSignalSpec",
    "DurableSignalStatus",
    "DurableWorkflowSpec",
    "DurableWorkflowStatus",
    "Phase",
]
