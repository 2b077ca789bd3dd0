"""The dashboard package's surface, pinned: the CLI and the demo use these names."""

from __future__ import annotations

import durable._dashboard as dashboard


def test_dashboard_exports() -> None:
    assert sorted(dashboard.__all__) == sorted(["TOKEN_ENV", "DashboardConfig", "create_app", "serve"])
    assert dashboard.TOKEN_ENV == "DURABLE_DASHBOARD_TOKEN"
