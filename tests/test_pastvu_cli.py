"""``arhiva crawl pastvu`` end to end (the crawl runs in a child process)."""
import json

import pytest
from typer.testing import CliRunner

from flows.cli import app
from tests.pastvu_server import CHISINAU, FakePastvu, fixture_photos
from tests.test_pastvu_crawl import count, records

pytestmark = pytest.mark.slow  # the quick lane: pytest -m "not slow"

FAST = ["--setting", "ROBOTSTXT_OBEY=false", "--setting", "AUTOTHROTTLE_ENABLED=false", "--setting", "DOWNLOAD_DELAY=0",
        "--setting", "LOG_LEVEL=WARNING", "--setting", "CONCURRENT_REQUESTS_PER_DOMAIN=4"]


def test_cli_crawl_prints_summary_and_joins_collection(env, monkeypatch):
    from catalog.models import CollectionMember

    with FakePastvu(fixture_photos()) as server:
        monkeypatch.setenv("ARHIVA_ALLOW_PRIVATE", server.base_url)  # the URL gate refuses loopback otherwise
        args = ["crawl", "pastvu", "--bbox", ",".join(map(str, CHISINAU)), "--api-url", server.api_url,
                "--tile-size", "0.03", *FAST]
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, result.output
        assert "records new" in result.output and "succeeded" in result.output
        n = len(server.public_in(CHISINAU))
        assert len(records(env)) == n == 8
        assert count(env, CollectionMember) == n  # default collection "pastvu"
        again = CliRunner().invoke(app, [*args, "--json"])
        assert again.exit_code == 0, again.output
        summary = json.loads(again.output[again.output.index("{"):])
        assert summary["records"]["unchanged"] == n and summary["requests"]["by_kind"] == {"getByBounds": 4}


def test_cli_rejects_bad_arguments(env):
    runner = CliRunner()
    r = runner.invoke(app, ["crawl", "pastvu"])
    assert r.exit_code == 2
    r = runner.invoke(app, ["crawl", "pastvu", "--bbox", "30,45,26,48"])
    assert r.exit_code == 2 and "west" in r.output
    r = runner.invoke(app, ["crawl", "pastvu", "--region", "moldova", "--years", "1950-1900"])
    assert r.exit_code == 2
    r = runner.invoke(app, ["crawl", "pastvu", "--region", "moldova", "--setting", "NOEQUALS"])
    assert r.exit_code == 2
