"""PastVu API answers: results, and the many shapes of an error."""
import json
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from crawlers.pastvu.api import PastvuError, bounds_params, call_url, parse

FIX = Path(__file__).parent / "fixtures" / "pastvu"


def body(name):
    return (FIX / name).read_bytes()


def test_call_url_sends_params_as_json_string():
    url = call_url("https://pastvu.com/api2", "photo.giveForPage", {"cid": 5})
    q = parse_qs(urlsplit(url).query)
    assert q["method"] == ["photo.giveForPage"]
    assert json.loads(q["params"][0]) == {"cid": 5}
    assert "params%5B" not in url  # never qs brackets


def test_bounds_params_z_is_a_number_and_local_work():
    p = bounds_params({"type": "Polygon", "coordinates": []}, years=(1900, 1950))
    assert p["z"] == 17 and isinstance(p["z"], int) and p["localWork"] is True
    assert (p["year"], p["year2"]) == (1900, 1950)
    assert "year" not in bounds_params({}, z=18)


def test_success_results():
    res = parse(200, body("getbybounds_photos.json"))
    assert res["z"] == 17 and len(res["photos"]) == 8 and "clusters" not in res
    res = parse(200, body("giveforpage_1345288.json"))
    assert res["photo"]["cid"] == 1345288


@pytest.mark.parametrize("name,code", [
    ("error_bad_params.json", "BAD_PARAMS"),
    ("error_no_such_photo.json", "NO_SUCH_PHOTO"),
    ("error_no_such_photo_ru.json", "NO_SUCH_PHOTO"),
    ("error_unhandled.json", "UNHANDLED_ERROR"),
    ("error_deny.json", "DENY"),
])
def test_errors_with_http_200(name, code):
    with pytest.raises(PastvuError) as exc:
        parse(200, body(name))
    assert exc.value.code == code and exc.value.status == 200 and not exc.value.too_big


def test_unknown_method_is_a_bare_string_400():
    with pytest.raises(PastvuError) as exc:
        parse(400, body("error_no_such_method.json"))
    assert exc.value.code == "NO_SUCH_METHOD"
    assert "does not exist" in exc.value.message


def test_bad_json_params_400():
    with pytest.raises(PastvuError) as exc:
        parse(400, body("error_bad_json.json"))
    assert exc.value.code == "BAD_REQUEST"


def test_text_and_html_errors():
    with pytest.raises(PastvuError) as exc:
        parse(400, b"SESSION_NO_HEADERS")
    assert exc.value.code == "SESSION_NO_HEADERS"
    with pytest.raises(PastvuError) as exc:
        parse(503, b"Service Unavailable: session store timeout")
    assert exc.value.code == "HTTP_503"
    with pytest.raises(PastvuError) as exc:
        parse(524, b"<!DOCTYPE html><html><title>524: A timeout occurred</title></html>")
    assert exc.value.too_big
    with pytest.raises(PastvuError) as exc:
        parse(200, b"<html>welcome to the API</html>")
    assert exc.value.code == "NOT_JSON"


def test_ok_json_without_result():
    with pytest.raises(PastvuError):
        parse(200, b'{"rid": "abc"}')
    with pytest.raises(PastvuError):
        parse(200, b"[1, 2]")
