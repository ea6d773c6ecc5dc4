"""`timeline extract` as an analyst runs it: drafts of the seed page with the store's
actors, its own scores against the development set, a clear error for what is not an
article, and drafts that a reviewer keeps loaded back with `timeline backfill`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from service import cli
from service.files.backfill import SEED_DIR

ARTICLE = SEED_DIR.parent / "seed-gold" / "article.txt"
GOLD = SEED_DIR.parent / "seed-gold" / "gold.ndjson"
AT = ["--published-at", "2025-02-13T18:00Z"]


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("TIMELINE_DATABASE_URL", f"sqlite:///{tmp_path}/store")
    runner = CliRunner()
    assert runner.invoke(cli.app, ["seed"]).exit_code == 0
    return runner


def test_the_seed_page_drafts_with_the_stores_actors_and_scores_itself(
    runner: CliRunner, tmp_path: Path
) -> None:
    out = tmp_path / "drafts.ndjson"
    result = runner.invoke(
        cli.app, ["extract", str(ARTICLE), *AT, "--eval", str(GOLD), "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(lines) >= 27
    speakers = {x.get("speaker") or x["by"][0] for x in lines}
    assert {"donald-trump", "pete-hegseth", "mark-rutte", "valerii-pekar"} <= speakers
    # A quotation stored already is named by its record's id.
    found = next(x for x in lines if x.get("quote") == "good possibility")
    assert found["draft"]["existing"] is not None
    scores = dict(x.rsplit(" ", 1) for x in result.stderr.splitlines()[2:])
    assert float(scores["precision"]) >= 0.85 and float(scores["recall"]) >= 0.65
    assert float(scores["direct-quote recall"]) >= 0.85
    assert float(scores["date accuracy"]) >= 0.9


def test_drafts_a_reviewer_keeps_load_with_backfill_once(runner: CliRunner, tmp_path: Path) -> None:
    text = tmp_path / "article.txt"
    text.write_text("Mark Rutte said allies must “spend more, and faster”.\n", encoding="utf-8")
    out = tmp_path / "drafts.ndjson"
    args = ["extract", str(text), *AT, "--source-url", "https://news.example/1", "-o", str(out)]
    assert runner.invoke(cli.app, args).exit_code == 0
    first = runner.invoke(cli.app, ["backfill", str(out)])
    assert first.exit_code == 0, first.output
    assert (json.loads(first.stdout)["accepted"], json.loads(first.stdout)["duplicates"]) == (1, 0)
    again = json.loads(runner.invoke(cli.app, ["backfill", str(out)]).stdout)
    assert (again["accepted"], again["duplicates"]) == (0, 1)


@pytest.mark.parametrize(
    ("content", "args", "said"),
    [
        (b"", AT, "the text is empty"),
        (bytes(range(256)) * 8, AT, "not UTF-8 text"),
        (b"Rutte said it.", ["--published-at", "2025-02-13T18:00"], "has no UTC offset"),
        (b"Rutte said it.", ["--published-at", "2025-02-13"], "an instant with a UTC offset"),
        (b"Rutte said it.", [*AT, "--source-url", "ftp://x"], "--source-url"),
    ],
)
def test_what_is_not_an_article_is_a_clear_error(
    runner: CliRunner, tmp_path: Path, content: bytes, args: list[str], said: str
) -> None:
    path = tmp_path / "input"
    path.write_bytes(content)
    result = runner.invoke(cli.app, ["extract", str(path), *args])
    assert result.exit_code == 2 and said in result.stderr
    assert "Traceback" not in result.output


def test_a_fifty_megabyte_file_is_refused_before_it_is_read(
    runner: CliRunner, tmp_path: Path
) -> None:
    path = tmp_path / "huge.txt"
    with path.open("wb") as f:
        f.truncate(50 * 1024 * 1024)  # sparse: nothing is written
    result = runner.invoke(cli.app, ["extract", str(path), *AT])
    assert result.exit_code == 2 and "longer than" in result.stderr


@pytest.mark.parametrize(
    "text", ["No one is quoted here at all.", "Rutte said “it is open and never closed"]
)
def test_a_page_with_no_quotation_or_an_unclosed_one_drafts_without_error(
    runner: CliRunner, tmp_path: Path, text: str
) -> None:
    result = runner.invoke(cli.app, ["extract", "-", *AT], input=text)
    assert result.exit_code == 0, result.output
    for line in result.stdout.splitlines():
        assert json.loads(line)["draft"]["rule"]
