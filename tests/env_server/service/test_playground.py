"""The playground page, in a real headless browser (Debian's chromium + chromedriver, driven by selenium).

Against the real `sched-env serve`: load the page, pick a problem, submit the optimal answer and a broken
one, read the reward, verdict and violations the page shows, and check the timeline's highlights. A
screenshot is written to the test's tmp dir, and to `$SCHED_SCREENSHOT_DIR` when set (`make
screenshots` refreshes docs/img/playground.png). `.ci/run` installs chromium when it is missing; without
it these tests skip, saying so, except in CI (`CI` set), where they fail. The page's static serving is also tested without a browser.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from tests.conftest import LiveServer, missing_tool

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
DRIVER = shutil.which("chromedriver")


# --- without a browser ------------------------------------------------------------------------------------


def test_root_redirects_to_the_page_and_assets_are_served(client: TestClient) -> None:
    root = client.get("/", follow_redirects=False)
    assert root.status_code == 307 and root.headers["location"] == "/playground"
    page = client.get("/playground")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assets = {
        "playground.js": "text/javascript",
        "playground.css": "text/css",
        "favicon.svg": "image/svg+xml",
    }
    for name, media in assets.items():
        assert f"/playground/assets/{name}" in page.text
        r = client.get(f"/playground/assets/{name}")
        assert r.status_code == 200 and r.headers["content-type"].startswith(media) and r.content
    assert not re.search(r"(src|href)=\"(https?:)?//", page.text)  # no CDN: everything is served here
    assert client.get("/playground/assets/..%2Fapp.py").status_code == 404
    assert client.get("/playground/assets/nope.js").status_code == 404


def test_the_page_calls_only_the_public_api(client: TestClient) -> None:
    js = client.get("/playground/assets/playground.js").text
    called = {p.split("?")[0].split("`")[0] for p in _api_paths(js)}
    assert called == {"/v1/info", "/v1/problems", "/v1/solve", "/v1/score"}
    assert "Authorization" in js and "Bearer " in js  # a pasted key is sent as a bearer token
    # The page draws the events the service read (`return_events`); it has no answer parser of its own.
    assert "return_events: true" in js and "<name>" not in js.replace("<name>${e.name}</name>", "")


def _api_paths(js: str) -> list[str]:
    return re.findall(r"api\(\s*[`\"](/[^`\"$]*)", js)


# --- in a browser -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if CHROMIUM is None or DRIVER is None:
        missing_tool("chromium and chromedriver are not installed (apt-get install chromium chromium-driver)")
    webdriver = pytest.importorskip("selenium.webdriver")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})  # to read request headers
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1440,1000", "--hide-scrollbars", "--force-device-scale-factor=1"):  # fmt: skip
        options.add_argument(arg)
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=DRIVER))
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def _wait(driver: Any, condition: Any, timeout: float = 20, ignored_exceptions: Any = None) -> Any:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.05, ignored_exceptions=ignored_exceptions).until(
        condition
    )


def _by_id(driver: Any, element_id: str) -> Any:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.ID, element_id)


def _all(driver: Any, css: str) -> list[Any]:
    from selenium.webdriver.common.by import By

    return list(driver.find_elements(By.CSS_SELECTOR, css))


def _scored(driver: Any) -> dict[str, Any]:
    """Wait for the result of the latest request, then read what the page shows."""
    _wait(driver, lambda d: _by_id(d, "result").get_attribute("data-state") == "done")
    return {
        "reward": _by_id(driver, "reward").text,
        "verdict": _by_id(driver, "verdict").text,
        "violations": [
            (li.get_attribute("data-type"), li.find_element("css selector", ".vmsg").text)
            for li in _all(driver, "#violations li.violation")
        ],
        "none": [li.text for li in _all(driver, "#violations li.none")],
    }


def _click_event(driver: Any, index: int) -> None:
    """Click an event of the timeline. A click re-draws the timeline (now, and again when its debounced
    score returns), so an element found a moment ago may be gone: find it again until the click lands."""
    from selenium.common.exceptions import StaleElementReferenceException

    css = f'#timeline g.event[data-index="{index}"] rect'
    _wait(
        driver,
        lambda d: _all(d, css)[0].click() is None,
        ignored_exceptions=(StaleElementReferenceException, IndexError),
    )


def _settled(driver: Any, completion_is: Any) -> None:
    """Wait until the completion box holds what the last click wrote and that completion has been scored
    and drawn (the page sets `pending` in the same task as it writes the box, so `done` after the write
    means the redraw is over)."""
    _wait(
        driver,
        lambda d: (
            completion_is(_by_id(d, "completion").get_attribute("value"))
            and _by_id(d, "result").get_attribute("data-state") == "done"
        ),
    )


def _overlapping_pair(problem: dict[str, Any]) -> tuple[int, int]:
    def minutes(t: str) -> int:
        return int(t[:2]) * 60 + int(t[3:])

    ev = problem["events"]
    for i, j in itertools.combinations(range(len(ev)), 2):
        if minutes(ev[i]["start"]) < minutes(ev[j]["end"]) and minutes(ev[j]["start"]) < minutes(
            ev[i]["end"]
        ):
            return i, j
    raise AssertionError("generated problems have at least one overlapping pair")


def test_pick_a_problem_score_the_optimum_and_a_broken_answer(
    browser: Any, live_server: LiveServer, tmp_path: Path
) -> None:
    from selenium.webdriver.support.ui import Select

    browser.get(f"{live_server.url}/")
    _wait(browser, lambda d: len(Select(_by_id(d, "problem-select")).options) > 1)
    assert browser.current_url.endswith("/playground")
    page = httpx.get(
        f"{live_server.url}/v1/problems", params={"split": "test", "limit": 16}, timeout=10
    ).json()
    problem = max(page["items"], key=lambda p: len(p["events"]))  # the busiest day makes the best picture
    pid = problem["id"]
    Select(_by_id(browser, "problem-select")).select_by_value(pid)
    _wait(browser, lambda d: len(_all(d, "#timeline g.event")) == len(problem["events"]))
    _wait(browser, lambda d: pid in _by_id(d, "problem-meta").text)
    priorities = set(problem["priorities"])
    titles = [g.find_element("css selector", "title").get_attribute("textContent")
              for g in _all(browser, "#timeline g.event.priority")]  # fmt: skip
    assert len(titles) == len(priorities)
    assert all(t.endswith("(priority ×2)") and any(t.startswith(n + " ") for n in priorities) for t in titles)

    # The optimal answer: 100, valid, nothing broken, drawn in both lower lanes.
    _by_id(browser, "btn-optimal").click()
    best = _scored(browser)
    solved = httpx.post(
        f"{live_server.url}/v1/solve",
        json={"problem": {k: problem[k] for k in ("events", "priorities")}},
        timeout=10,
    ).json()
    assert best["reward"] == "100" and best["verdict"] == "valid"
    assert best["violations"] == [] and best["none"] == ["none"]
    assert len(_all(browser, "#timeline g.chosen")) == len(solved["schedule"])
    assert len(_all(browser, "#timeline g.optimal")) == len(solved["schedule"])
    assert not _all(browser, "#timeline .overlapping")

    # A broken answer built by clicking two overlapping events.
    _by_id(browser, "btn-clear").click()
    _settled(browser, lambda text: text == "")
    i, j = _overlapping_pair(problem)
    for k in (i, j):
        _click_event(browser, k)
        _settled(browser, lambda text, k=k: f"<name>{problem['events'][k]['name']}</name>" in text)
    _by_id(browser, "btn-score").click()
    broken = _scored(browser)
    expected = httpx.post(
        f"{live_server.url}/v1/score",
        json={
            "items": [{"problem_id": pid, "completion": _by_id(browser, "completion").get_attribute("value")}]
        },
        timeout=10,
    ).json()["results"][0]
    assert broken["verdict"] == "overlap" == expected["verdict"]
    assert (
        float(broken["reward"]) == pytest.approx(expected["reward"], abs=0.05)
        and float(broken["reward"]) < 100
    )
    assert [t for t, _ in broken["violations"]] == [v["type"] for v in expected["violations"]] == ["overlap"]
    names = (problem["events"][i]["name"], problem["events"][j]["name"])
    assert all(n in broken["violations"][0][1] for n in names)
    assert len(_all(browser, "#timeline g.chosen.overlapping")) == 2
    assert len(_all(browser, "#timeline g.event.overlapping")) == 2
    assert _all(browser, "#timeline rect.clash")
    _by_id(browser, "btn-score").click()  # let the last debounced request settle before the picture
    _scored(browser)
    _screenshot(browser, tmp_path, "playground.png")


def test_paste_a_problem_and_an_invented_event(browser: Any, live_server: LiveServer) -> None:
    from selenium.webdriver.support.ui import Select

    browser.get(f"{live_server.url}/playground")
    _wait(browser, lambda d: len(_all(d, "#timeline g.event")) > 0)
    _by_id(browser, "tab-paste").click()
    problem = {
        "events": [
            ["Standup", "09:00", "09:30"],
            ["Design Review", "09:15", "10:45"],
            ["Lunch", "12:00", "13:00"],
        ],
        "priority_events": ["Design Review"],
    }
    _set(browser, "paste-json", json.dumps(problem))
    _by_id(browser, "btn-use-pasted").click()
    _wait(
        browser,
        lambda d: "pasted" in _by_id(d, "problem-meta").text and len(_all(d, "#timeline g.event")) == 3,
    )
    completion = (
        "<think>x</think><schedule><event><name>Design Review</name><start>09:15</start><end>10:45</end></event>"
        "<event><name>Brunch</name><start>11:00</start><end>11:30</end></event></schedule>"
    )
    _set(browser, "completion", completion)
    _by_id(browser, "btn-score").click()
    shown = _scored(browser)
    assert shown["verdict"] == "unknown_event"
    assert [t for t, _ in shown["violations"]] == ["unknown_event"] and "Brunch" in shown["violations"][0][1]
    assert len(_all(browser, "#timeline g.chosen.unknown")) == 1
    assert len(_all(browser, "#timeline g.optimal")) == 2  # Design Review + Lunch

    # A padded name: `default` trims it (a known event), `original` compares it as written (unknown). The
    # page draws each profile's own reading, as the service returned it.
    padded = completion.replace("<name>Design Review</name>", "<name> Design Review </name>")
    _set(browser, "completion", padded)
    _by_id(browser, "btn-score").click()
    assert _scored(browser)["verdict"] == "unknown_event"
    assert (
        len(_all(browser, "#timeline g.chosen")) == 2
        and len(_all(browser, "#timeline g.chosen.unknown")) == 1
    )
    Select(_by_id(browser, "profile")).select_by_value("original")
    _wait(browser, lambda d: len(_all(d, "#timeline g.chosen.unknown")) == 2)
    assert _by_id(browser, "result").get_attribute("data-state") == "done"


def _set(driver: Any, element_id: str, text: str) -> None:
    """Set a textarea's value and fire `input`, as typing would (send_keys is slow on long text)."""
    driver.execute_script(
        "const e = document.getElementById(arguments[0]); e.value = arguments[1];"
        "e.dispatchEvent(new Event('input'));",
        element_id,
        text,
    )


def _screenshot(driver: Any, tmp_path: Path, name: str) -> None:
    import base64

    width, height = driver.execute_script(
        "return [document.documentElement.scrollWidth, document.documentElement.scrollHeight]"
    )
    shot = driver.execute_cdp_cmd(  # the whole page, not only the window
        "Page.captureScreenshot",
        {"format": "png", "captureBeyondViewport": True,
         "clip": {"x": 0, "y": 0, "width": width, "height": height, "scale": 1}},
    )  # fmt: skip
    png = tmp_path / name
    png.write_bytes(base64.b64decode(shot["data"]))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000
    target = os.environ.get("SCHED_SCREENSHOT_DIR")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copy(png, Path(target) / name)


def test_a_pasted_api_key_is_sent_as_a_bearer_token(browser: Any, live_server: LiveServer) -> None:
    browser.get(f"{live_server.url}/playground")
    _wait(browser, lambda d: len(_all(d, "#timeline g.event")) > 0)
    browser.get_log("performance")  # drop what loading the page logged
    browser.execute_script(
        "const k = document.getElementById('api-key'); k.value = 'sk-test-123';"
        "k.dispatchEvent(new Event('change'));"
    )

    def sent() -> dict[str, str]:
        for entry in browser.get_log("performance"):
            message = json.loads(entry["message"])["message"]
            if message["method"] == "Network.requestWillBeSent":
                request = message["params"]["request"]
                if request["url"].endswith("/v1/info"):
                    return {k.lower(): v for k, v in request["headers"].items()}
        return {}

    headers = _wait(browser, lambda d: sent() or False)
    assert headers["authorization"] == "Bearer sk-test-123"
    assert browser.execute_script("return sessionStorage.getItem('sched-api-key')") == "sk-test-123"
    browser.execute_script("sessionStorage.clear()")
