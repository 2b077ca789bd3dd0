"""Worker versions as the operator names them: a template's version, and the per-version object names.

A DurableWorkflow's worker template runs one version of the workflow code: `spec.worker.version`,
or, when absent, one derived from the image reference (the first 12 hex digits of a digest, else
the tag, else `latest`). Each version gets a Deployment of its own, and a version that has to be
checked first a replay-check Job; their names hold a DNS-safe form of the version, with a short
hash whenever that form is not the version itself, so two versions never share a name.
"""

from __future__ import annotations

import hashlib
import re

from ._models import WORKER_VERSION, WorkerTemplate

#: The label every per-version object carries (a DNS-safe form) and the annotation with the raw version.
LABEL_VERSION = "durable.dev/worker-version"
ANNOTATION_VERSION = "durable.dev/worker-version"
#: The image a verification Job checks, and the version it checks against.
ANNOTATION_IMAGE = "durable.dev/image"
ANNOTATION_VERIFIES = "durable.dev/verifies-version"

_VERSION = re.compile(WORKER_VERSION)
_DIGEST = re.compile(r"@sha256:([0-9a-fA-F]{12,})$")
#: Room the version's part of a name may take (Job names end up in a 63-character label).
_SLUG_MAX = 30


def derived_version(image: str) -> str:
    """The version of an image reference: `repo@sha256:<hex>` -> its first 12 hex digits,
    `host:5000/repo:1.2` -> `1.2`, `repo` -> `latest`. A tag that is no valid version name
    (too long, a leading `_`) becomes a hash of the whole reference."""
    ref = image.strip()
    digest = _DIGEST.search(ref)
    if digest:
        return digest.group(1)[:12].lower()
    name = ref.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    tag = last.rsplit(":", 1)[1] if ":" in last else "latest"
    if _VERSION.match(tag):
        return tag
    return _hash(ref, 12)


def template_version(template: WorkerTemplate) -> str:
    """The version a worker template runs: explicit, or derived from its image."""
    return template.version if template.version else derived_version(template.image)


def version_slug(version: str) -> str:
    """A DNS-label-safe form of `version`, distinct for distinct versions ("" is `unversioned`)."""
    if not version:
        return "unversioned"
    slug = re.sub(r"[^a-z0-9-]+", "-", version.lower()).strip("-")
    if slug == version and len(slug) <= _SLUG_MAX:
        return slug
    stem = slug[: _SLUG_MAX - 9].strip("-")
    return f"{stem}-{_hash(version, 8)}" if stem else _hash(version, 8)


def legacy_deployment_name(workflow_name: str) -> str:
    """The Deployment of an operator before worker versions: it counts as the unversioned one."""
    return f"{workflow_name}-worker"[:253]


def deployment_name(workflow_name: str, version: str) -> str:
    return _bounded(f"{workflow_name}-worker", version_slug(version), 253)


def job_name(workflow_name: str, version: str) -> str:
    # The Job controller puts the name into its pods' `job-name` label: at most 63 characters.
    return _bounded(f"{workflow_name}-verify", version_slug(version), 63)


def _bounded(prefix: str, slug: str, limit: int) -> str:
    name = f"{prefix}-{slug}"
    if len(name) <= limit:
        return name
    room = limit - len(slug) - 10
    return f"{prefix[:room].rstrip('-')}-{_hash(prefix, 8)}-{slug}"


def _hash(text: str, n: int) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:n]
