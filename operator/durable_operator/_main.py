"""`durable-operator`: run the operator (kopf with peering, probes and a metrics port).

Every option also reads an environment variable (what the Helm chart sets).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys

from ._metrics import metrics, serve
from ._operator import run
from ._runtime import OperatorConfig


def _env(name: str, default: str | None = None) -> str | None:
    return os.environ.get(name, default)


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="durable-operator", description=__doc__)
    p.add_argument("--redis-url", default=_env("DURABLE_REDIS_URL", "redis://localhost:6379/0"))
    p.add_argument(
        "--namespace", action="append", default=None, help="watch only these namespaces (repeatable)"
    )
    p.add_argument(
        "--peering",
        default=_env("DURABLE_PEERING"),
        help="ClusterKopfPeering name (several replicas, one active)",
    )
    p.add_argument(
        "--priority",
        type=int,
        default=int(_env("DURABLE_PEERING_PRIORITY") or 0) or None,
        help="peering priority: the highest live one is active (default: random per replica)",
    )
    p.add_argument("--liveness", default=_env("DURABLE_LIVENESS", "http://0.0.0.0:8080/healthz"))
    p.add_argument("--metrics-port", type=int, default=int(_env("DURABLE_METRICS_PORT", "9090") or 9090))
    p.add_argument("--worker-redis-secret", default=_env("DURABLE_WORKER_REDIS_SECRET"))
    p.add_argument("--worker-redis-secret-key", default=_env("DURABLE_WORKER_REDIS_SECRET_KEY", "redis-url"))
    p.add_argument(
        "--status-interval", type=float, default=float(_env("DURABLE_STATUS_INTERVAL", "15") or 15)
    )
    p.add_argument(
        "--max-patches-per-second", type=float, default=float(_env("DURABLE_MAX_PATCHES", "50") or 50)
    )
    p.add_argument("--log-level", default=_env("DURABLE_LOG_LEVEL", "INFO"))
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    config = OperatorConfig(
        redis_url=args.redis_url,
        worker_redis_secret=args.worker_redis_secret,
        worker_redis_secret_key=args.worker_redis_secret_key,
        status_interval=args.status_interval,
        max_patches_per_second=args.max_patches_per_second,
    )
    metrics()
    if args.metrics_port:
        serve(args.metrics_port)
    try:
        asyncio.run(
            run(
                config,
                peering_name=args.peering or None,
                priority=args.priority,
                liveness_endpoint=args.liveness or None,
                namespaces=args.namespace,
            )
        )
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
