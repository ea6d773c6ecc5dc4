"""Stable ids: the same slug or key gives the same UUID in every store."""

from __future__ import annotations

from functools import lru_cache
from uuid import UUID, uuid5

NAMESPACE = UUID("6f1c1f55-9a53-4d67-9d2e-3f1f8a3c2b10")


@lru_cache(maxsize=65536)
def actor_id(slug: str) -> UUID:
    return uuid5(NAMESPACE, f"actor:{slug}")


@lru_cache(maxsize=65536)
def topic_id(slug: str) -> UUID:
    return uuid5(NAMESPACE, f"topic:{slug}")


def record_id(kind: str, key: str) -> UUID:
    return uuid5(NAMESPACE, f"{kind}:{key}")
