"""The HTTP schemas state the domain's choices as types; they must not drift apart."""

from __future__ import annotations

from typing import get_args, get_type_hints

from domain import records, rules
from service.http import schemas


def test_the_schemas_offer_exactly_the_domain_s_choices() -> None:
    assert set(get_args(schemas.Channel)) == rules.CHANNELS
    assert set(get_args(schemas.OccurrenceKind)) == rules.OCCURRENCE_KINDS
    assert set(get_args(get_type_hints(schemas.ActorIn)["kind"])) == rules.ACTOR_KINDS


def test_the_record_kinds_are_those_with_a_content_schema() -> None:
    assert records.KINDS == tuple(records.SCHEMAS) == get_args(schemas.RecordKind)
