"""API keys: a name, one scope, and only a hash of the secret stored.

Scopes are ordered: read < write < admin. A key's name is what events record as their
writer; the key itself is shown once, at creation, and never logged.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

SCOPES = ("read", "write", "admin")
PREFIX = "tlk_"


class Database(Protocol):
    def query(self, sql: str, params: Any = ()) -> list[tuple[Any, ...]]: ...
    def execute(self, sql: str, params: Any = ()) -> None: ...


@dataclass(frozen=True, slots=True)
class Key:
    name: str
    scope: str
    created_at: str
    revoked_at: str | None

    def allows(self, scope: str) -> bool:
        return self.revoked_at is None and SCOPES.index(self.scope) >= SCOPES.index(scope)


class KeyProblem(Exception):
    """A key command that cannot be done (name taken, unknown name, bad scope)."""


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class KeyStore:
    def __init__(self, db: Database) -> None:
        self.db = db
        db.execute(
            "CREATE TABLE IF NOT EXISTS api_keys (name text PRIMARY KEY, scope text NOT NULL, "
            "digest text NOT NULL UNIQUE, created_at text NOT NULL, revoked_at text)"
        )

    def create(self, name: str, scope: str) -> str:
        """Make a key and return its secret, which is not stored."""
        if scope not in SCOPES:
            raise KeyProblem(f"scope must be one of {', '.join(SCOPES)}")
        if not name or len(name) > 100 or not name.isprintable():
            raise KeyProblem("a key name is 1 to 100 printable characters")
        if self.db.query("SELECT 1 FROM api_keys WHERE name = %s", (name,)):
            raise KeyProblem(f"a key named {name!r} exists")
        secret = PREFIX + secrets.token_urlsafe(32)
        now = datetime.now(UTC).isoformat()
        self.db.execute(
            "INSERT INTO api_keys VALUES (%s, %s, %s, %s, NULL)",
            (name, scope, _digest(secret), now),
        )
        return secret

    def find(self, secret: str) -> Key | None:
        if not secret.startswith(PREFIX) or len(secret) > 200:
            return None
        found = self.db.query(
            "SELECT name, scope, created_at, revoked_at FROM api_keys WHERE digest = %s",
            (_digest(secret),),
        )
        return Key(*found[0]) if found else None

    def list(self) -> list[Key]:
        return [
            Key(*row)
            for row in self.db.query(
                "SELECT name, scope, created_at, revoked_at FROM api_keys ORDER BY name"
            )
        ]

    def revoke(self, name: str) -> None:
        if not self.db.query(
            "SELECT 1 FROM api_keys WHERE name = %s AND revoked_at IS NULL", (name,)
        ):
            raise KeyProblem(f"no active key named {name!r}")
        self.db.execute(
            "UPDATE api_keys SET revoked_at = %s WHERE name = %s",
            (datetime.now(UTC).isoformat(), name),
        )
