from __future__ import annotations

import uuid

from hypothesis import given
from hypothesis import strategies as st

from domain.ids import NAMESPACE, actor_id, record_id, uuid5


@given(st.text(st.characters(exclude_categories=["Cs"])))
def test_ids_are_the_standard_uuid5_of_their_names(name: str) -> None:
    # Stored ids were made with the standard library's uuid5: every name keeps its id.
    assert uuid5(name) == uuid.uuid5(NAMESPACE, name)
    assert uuid5(name).version == 5


def test_a_key_gives_the_same_id_as_it_always_did() -> None:
    # Pinned: the same input loaded into two stores, or into one years apart, gets one id.
    assert str(record_id("statement", "rutte-square-mile")) == (
        "96bbf398-65cf-59ef-a737-4c884fe25413"
    )
    assert str(actor_id("mark-rutte")) == "38bc20ab-8140-519d-a08d-1a4ff3e6000b"
