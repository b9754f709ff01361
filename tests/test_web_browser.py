"""End to end in a real headless browser (Debian's chromium, driven by Playwright).

The app runs under uvicorn in a thread on 127.0.0.1 (a free port). With
ARHIVA_SCREENSHOTS=DIR set, the test also writes the README's screenshots
(web-search.png, web-record.png) there.
"""
from __future__ import annotations

import io
import os
import shutil
import threading
import time
from pathlib import Path

import pytest

from catalog.web import create_app
from tests.web_catalogue import web_catalogue_fixture  # noqa: F401  (the web_catalogue fixture)

pytestmark = pytest.mark.slow  # the quick lane: pytest -m "not slow"

CHROMIUM = os.environ.get("ARHIVA_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]

playwright_api = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed")
if not (Path(CHROMIUM).is_file() or shutil.which(CHROMIUM)):
    if os.environ.get("CI"):  # CI installs chromium: a missing browser must not pass as a skip
        pytest.fail(f"no chromium at {CHROMIUM} (apt-get install -y chromium)", pytrace=False)
    pytest.skip(f"no chromium at {CHROMIUM} (apt-get install chromium)", allow_module_level=True)


@pytest.fixture(scope="module")
def server(web_catalogue, engine):
    import uvicorn

    config = uvicorn.Config(create_app(engine), host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not (srv.started and srv.servers):
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    port = srv.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(10)


@pytest.fixture(scope="module")
def browser():
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture()
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, device_scale_factor=1)
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    pg.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    pg.on("response", lambda r: errors.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    pg.errors = errors
    yield pg
    context.close()


def loaded(img) -> bool:
    return img.evaluate("el => el.complete && el.naturalWidth > 0")


def shot(page, name: str) -> None:
    """Save a README screenshot (PNG, colours reduced to stay small) when ARHIVA_SCREENSHOTS is set."""
    folder = os.environ.get("ARHIVA_SCREENSHOTS")
    if not folder:
        return
    from PIL import Image

    Path(folder).mkdir(parents=True, exist_ok=True)
    im = Image.open(io.BytesIO(page.screenshot(full_page=False))).convert("RGB")
    for colors in (256, 192, 128, 96):  # README images stay under 300 KB
        buf = io.BytesIO()
        im.quantize(colors=colors, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(buf, "PNG",
                                                                                                  optimize=True)
        if buf.tell() < 280_000:
            break
    (Path(folder) / name).write_bytes(buf.getvalue())


def test_search_a_year_range_open_a_record_and_see_both_images(server, page, web_catalogue):
    page.goto(server + "/")
    assert "9 records" in page.inner_text("#result-count")
    page.fill("input[name=year_from]", "1930")
    page.fill("input[name=year_to]", "1936")
    page.click("button[type=submit]")
    page.wait_for_url("**/?*year_from=1930*")
    assert page.inner_text("#result-count").startswith("3 records")
    cards = page.locator(".card")
    assert cards.count() == 3
    for i in range(3):
        img = cards.nth(i).locator("img")
        img.scroll_into_view_if_needed()
        page.wait_for_function("el => el.complete && el.naturalWidth > 0", arg=img.element_handle(), timeout=10000)
    titles = page.locator(".card .title").all_inner_texts()
    assert any(t.startswith("Catedrala Mitropolitană") for t in titles)
    assert any("<script>" in t for t in titles)  # harvested HTML shown as text, never run
    assert page.locator(".card .badge").count() == 1

    page.locator(".card", has_text="Catedrala").click()
    page.wait_for_url(f"**/records/{web_catalogue.ids['cat-1935']}")
    original, colorized = page.locator("#original-1"), page.locator("#colorized-1")
    for img in (original, colorized):
        page.wait_for_function("el => el.complete && el.naturalWidth > 0", arg=img.element_handle(), timeout=10000)
        assert img.is_visible() and loaded(img)
    assert original.evaluate("el => el.naturalWidth") == colorized.evaluate("el => el.naturalWidth") == 480
    # the slider moves the edge between the original and the colorized version
    slider = page.locator(".compare input[type=range]")
    slider.fill("80")
    assert page.locator(".compare").evaluate("el => el.style.getPropertyValue('--pos')") == "80%"
    timeline = page.locator(".timeline").inner_text()
    assert "Harvested from pastvu" in timeline and "Colorized by model unet-r18-2026-06" in timeline
    assert "circa 1935" in page.inner_text(".metadata") and "1935" in page.inner_text(".metadata")
    slider.fill("50")
    shot(page, "web-record.png")
    assert page.errors == []


def test_years_and_area_together_then_drawing_an_area_on_the_map(server, page):
    page.goto(server + "/?year_from=1920&year_to=1940&bbox=27.0,46.5,29.0,48.5")
    assert page.locator(".card .title").count() == 5
    assert page.locator("#map-box").get_attribute("visibility") is None  # the asked area is drawn
    for img in page.locator(".card img").element_handles():
        page.wait_for_function("el => el.complete && el.naturalWidth > 0", arg=img, timeout=10000)
    shot(page, "web-search.png")
    page.goto(server + "/")
    box = page.locator("#map").bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.30, box["y"] + box["height"] * 0.05)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.45, box["y"] + box["height"] * 0.12, steps=5)
    page.mouse.up()
    w, s, e, n = (float(v) for v in page.input_value("#bbox").split(","))
    assert 27.5 < w < e < 28.6 and 48.0 < s < n < 48.6
    page.fill("#bbox", "28.0,48.0,28.5,48.3")
    page.click("button[type=submit]")
    page.wait_for_url("**/?*bbox=*")
    assert page.locator(".card .title").all_inner_texts() == ["Cetatea Soroca"]
    assert page.errors == []
