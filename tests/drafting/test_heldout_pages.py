"""Two more live pages the rules were not written beside (an election night abroad, agency
style, newest post first, time lines without a day; a collision at sea, Al Jazeera style,
curly quotation marks), their statements typed by a person before the drafts were seen.
The drafts of each meet the targets set for unseen pages."""

from __future__ import annotations

import pytest

from drafting.actors import actors_from
from tests.drafting.pages import assert_meets_the_targets, scores_of

ELECTION = actors_from(
    [
        {"id": "marija-kostova", "name": "Marija Kostova", "kind": "person",
         "roles": [{"title": "Prime Minister", "organization": "vardania",
                    "since": "2022-03-01"}]},
        {"id": "lidia-novak", "name": "Lidia Novak", "kind": "person",
         "roles": [{"title": "Interior Minister", "organization": "vardania",
                    "since": "2024-01-15"}]},
        {"id": "vardania", "name": "Vardania", "kind": "state", "aliases": ["Kerisk"]},
        {"id": "jonas-eberle", "name": "Jonas Eberle", "kind": "person",
         "roles": [{"title": "Leader", "organization": "civic-renewal", "since": "2019-05-01"}]},
        {"id": "civic-renewal", "name": "Civic Renewal", "kind": "organization"},
        {"id": "national-union", "name": "National Union", "kind": "organization"},
        {"id": "dragan-sele", "name": "Dragan Sele", "kind": "person",
         "roles": [{"title": "Chairman", "organization": "cec", "since": "2021-02-01"}]},
        {"id": "cec", "name": "Central Election Commission", "kind": "organization",
         "aliases": ["CEC", "election commission"]},
        {"id": "henrik-dahl", "name": "Henrik Dahl", "kind": "person",
         "roles": [{"title": "Head of Mission", "organization": "eem",
                    "since": "2026-09-01"}]},
        {"id": "eem", "name": "European Election Monitors", "kind": "organization",
         "aliases": ["EEM"]},
        {"id": "oskar-lind", "name": "Oskar Lind", "kind": "person",
         "roles": [{"title": "President", "organization": "estmark", "since": "2023-06-01"}]},
        {"id": "estmark", "name": "Estmark", "kind": "state"},
        {"id": "yana-kirova", "name": "Yana Kirova", "kind": "person",
         "roles": [{"title": "Spokesperson", "organization": "dorvask", "since": "2025-01-01"}]},
        {"id": "dorvask", "name": "Dorvask", "kind": "state"},
    ]
)  # fmt: skip

SHOAL = actors_from(
    [
        {"id": "moresia", "name": "Moresia", "kind": "state", "aliases": ["Valmora"]},
        {"id": "moresian-navy", "name": "Moresian Navy", "kind": "organization"},
        {"id": "idris-kamal", "name": "Idris Kamal", "kind": "person",
         "roles": [{"title": "Spokesperson", "organization": "moresian-navy",
                    "since": "2025-04-01"}]},
        {"id": "farid-osman", "name": "Farid Osman", "kind": "person",
         "roles": [{"title": "Defence Minister", "organization": "moresia",
                    "since": "2024-02-01"}]},
        {"id": "ardania", "name": "Ardania", "kind": "state", "aliases": ["Sennet"]},
        {"id": "leila-haddad", "name": "Leila Haddad", "kind": "person",
         "roles": [{"title": "Foreign Minister", "organization": "ardania",
                    "since": "2025-01-01"}]},
        {"id": "samir-nassar", "name": "Samir Nassar", "kind": "person",
         "roles": [{"title": "President", "organization": "ardania", "since": "2025-09-01"}]},
        {"id": "united-nations", "name": "United Nations", "kind": "organization",
         "aliases": ["UN"]},
        {"id": "olu-adebayo", "name": "Olu Adebayo", "kind": "person",
         "roles": [{"title": "Spokesperson", "organization": "united-nations"}]},
        {"id": "imo", "name": "International Maritime Organization", "kind": "organization",
         "aliases": ["IMO"]},
        {"id": "hana-lindqvist", "name": "Hana Lindqvist", "kind": "person",
         "roles": [{"title": "Secretary-General", "organization": "imo",
                    "since": "2024-01-01"}]},
    ]
)  # fmt: skip

PAGES = {
    "election-night": (ELECTION, "2026-11-08T23:30Z"),
    "shoal-collision": (SHOAL, "2026-07-14T17:00Z"),
}


@pytest.mark.parametrize("page", PAGES)
def test_the_drafts_of_a_held_out_live_page_meet_the_targets(page: str) -> None:
    assert_meets_the_targets(scores_of(page, *PAGES[page]))
