"""Two live pages the rules were not written beside (a trade summit, BBC style; ceasefire
talks, Guardian style, newest post first), their statements typed by a person before the
drafts were seen. The drafts of each meet the targets set for unseen pages."""

from __future__ import annotations

import pytest

from drafting.actors import actors_from
from tests.drafting.pages import assert_meets_the_targets, scores_of

TRADE = actors_from(
    [
        {"id": "marta-keller", "name": "Marta Keller", "kind": "person",
         "roles": [{"title": "Trade Commissioner", "organization": "european-union",
                    "since": "2024-12-01"}]},
        {"id": "european-union", "name": "European Union", "kind": "organization",
         "aliases": ["EU", "Brussels"]},
        {"id": "hiroshi-tanabe", "name": "Hiroshi Tanabe", "kind": "person",
         "roles": [{"title": "Trade Minister", "organization": "japan", "since": "2024-10-01"}]},
        {"id": "kenji-mori", "name": "Kenji Mori", "kind": "person",
         "roles": [{"title": "Trade Minister", "organization": "japan", "since": "2021-10-01",
                    "until": "2024-09-30"}]},
        {"id": "japan", "name": "Japan", "kind": "state", "aliases": ["Tokyo"]},
        {"id": "claire-dubois", "name": "Claire Dubois", "kind": "person",
         "roles": [{"title": "Prime Minister", "organization": "canada", "since": "2023-05-01"}]},
        {"id": "canada", "name": "Canada", "kind": "state", "aliases": ["Ottawa"]},
        {"id": "raymond-ochoa", "name": "Raymond Ochoa", "kind": "person",
         "roles": [{"title": "Trade Representative", "organization": "united-states",
                    "since": "2025-01-20"}]},
        {"id": "united-states", "name": "United States", "kind": "state",
         "aliases": ["US", "Washington"]},
        {"id": "lena-forsberg", "name": "Lena Forsberg", "kind": "person",
         "roles": [{"title": "Director-General", "organization": "wto", "since": "2025-03-01"}]},
        {"id": "wto", "name": "World Trade Organization", "kind": "organization",
         "aliases": ["WTO"]},
        {"id": "peter-hale", "name": "Peter Hale", "kind": "person",
         "roles": [{"title": "Chairman", "organization": "global-steel-alliance"}]},
        {"id": "global-steel-alliance", "name": "Global Steel Alliance", "kind": "organization",
         "aliases": ["the alliance"]},
    ]
)  # fmt: skip

CEASEFIRE = actors_from(
    [
        {"id": "grace-nwosu", "name": "Grace Nwosu", "kind": "person",
         "roles": [{"title": "Special Envoy", "organization": "united-nations"}]},
        {"id": "united-nations", "name": "United Nations", "kind": "organization",
         "aliases": ["UN"]},
        {"id": "ilya-sorokin", "name": "Ilya Sorokin", "kind": "person",
         "roles": [{"title": "Spokesperson", "organization": "russia", "since": "2024-05-01"}]},
        {"id": "russia", "name": "Russia", "kind": "state", "aliases": ["Moscow", "the Kremlin"]},
        {"id": "mira-sovan", "name": "Mira Sovan", "kind": "person",
         "roles": [{"title": "President", "organization": "dalmor", "since": "2022-07-01"}]},
        {"id": "dalmor", "name": "Dalmor", "kind": "state", "aliases": ["Teslin"]},
        {"id": "tomas-brenn", "name": "Tomas Brenn", "kind": "person",
         "roles": [{"title": "Chief of the General Staff", "organization": "dalmor"}]},
        {"id": "anton-reski", "name": "Anton Reski", "kind": "person",
         "roles": [{"title": "Foreign Minister", "organization": "karvenia",
                    "since": "2025-06-01"}]},
        {"id": "karvenia", "name": "Karvenia", "kind": "state", "aliases": ["Varsk"]},
        {"id": "khalid-al-mansouri", "name": "Khalid Al-Mansouri", "kind": "person",
         "roles": [{"title": "Foreign Minister", "organization": "qatar"}]},
        {"id": "qatar", "name": "Qatar", "kind": "state", "aliases": ["Doha"]},
        {"id": "selin-aksoy", "name": "Selin Aksoy", "kind": "person",
         "roles": [{"title": "Foreign Minister", "organization": "turkey"}]},
        {"id": "turkey", "name": "Turkey", "kind": "state", "aliases": ["Ankara"]},
        {"id": "icrc", "name": "International Committee of the Red Cross",
         "kind": "organization", "aliases": ["ICRC", "the Red Cross"]},
    ]
)  # fmt: skip

PAGES = {
    "trade-summit": (TRADE, "2025-06-12T18:00Z"),
    "ceasefire-talks": (CEASEFIRE, "2026-03-03T18:00Z"),
}


@pytest.mark.parametrize("page", PAGES)
def test_the_drafts_of_an_unseen_live_page_meet_the_targets(page: str) -> None:
    assert_meets_the_targets(scores_of(page, *PAGES[page]))
