"""What a dashboard is allowed to do: its token, whether reads need it, the unauthenticated opt-out."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["TOKEN_ENV", "DashboardConfig", "read_token_file"]

# The bearer token when no --token-file is given (the chart sets it from a Secret).
TOKEN_ENV = "DURABLE_DASHBOARD_TOKEN"
# Shorter tokens are refused: a token is the only thing between a browser and every operator action.
MIN_TOKEN_LENGTH = 16


def read_token_file(path: str | Path) -> str:
    """The token in `path`, surrounding whitespace dropped; `ValueError` if it is empty or short."""
    token = Path(path).read_text(encoding="utf-8").strip()
    return _checked(token, f"token file {str(path)!r}")


def _checked(token: str, what: str) -> str:
    if len(token) < MIN_TOKEN_LENGTH:
        raise ValueError(f"{what}: the token must be at least {MIN_TOKEN_LENGTH} characters")
    return token


@dataclass(frozen=True)
class DashboardConfig:
    """`token`: the bearer token that authorizes actions (and reads when `protect_reads`); None leaves
    actions denied unless `allow_unauthenticated_actions`. Sessions are signed with a key derived from
    the token, so every replica given the same token accepts the same sessions, and a new token signs
    everybody out."""

    token: str | None = None
    protect_reads: bool = False
    allow_unauthenticated_actions: bool = False
    max_body_bytes: int = 64 * 1024
    session_max_age_s: int = 12 * 3600
    # Without a token, sessions carry only a CSRF token: a random key per process will do.
    _random_key: bytes = field(default_factory=lambda: secrets.token_bytes(32), repr=False)

    def __post_init__(self) -> None:
        if self.token is not None:
            _checked(self.token, "the dashboard token")
        if self.protect_reads and self.token is None:
            raise ValueError("protecting reads needs a token: pass --token-file or set " + TOKEN_ENV)

    @classmethod
    def from_env(
        cls,
        token_file: str | Path | None = None,
        *,
        protect_reads: bool = False,
        allow_unauthenticated_actions: bool = False,
    ) -> DashboardConfig:
        """The token from `token_file`, else from the environment (`DURABLE_DASHBOARD_TOKEN`)."""
        if token_file is not None:
            token: str | None = read_token_file(token_file)
        else:
            token = os.environ.get(TOKEN_ENV, "").strip() or None
        return cls(
            token=token,
            protect_reads=protect_reads,
            allow_unauthenticated_actions=allow_unauthenticated_actions,
        )

    @property
    def actions_enabled(self) -> bool:
        return self.token is not None or self.allow_unauthenticated_actions

    def session_key(self) -> bytes:
        if self.token is None:
            return self._random_key
        return hmac.new(self.token.encode(), b"durable-dashboard-session-v1", hashlib.sha256).digest()

    def token_matches(self, given: str | None) -> bool:
        """Constant-time comparison of a presented token with ours (False when we have none)."""
        if self.token is None or not given:
            return False
        return hmac.compare_digest(given.encode(), self.token.encode())
