"""The workbench page in a real browser: headless Chromium (Debian's chromium + chromium-driver, installed by
``make``) driven by Selenium. A coder signs in, claims an item whose note (with planted PHI) sits on the input
topic, sees each code's evidence highlighted at its exact characters, accepts one code, rejects one, adds one
through the search, completes; then the FHIR feedback Bundle with exactly those decisions is on the feedback
topic, and no PHI is in the server's log or in Redis. Screenshots go to ``$ICDCODER_TEST_ARTIFACTS`` (default
``test-artifacts/``)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from engine.worklist.feedback import DECISION_HEADER
from tests.fixtures.servers import read_topic

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER), reason="chromium and chromium-driver are not installed (make installs them)")

PHI = ["Abernathy", "Wilhelmina", "4471923", "555-0142", "Kowalski", "1948-03-02"]
TEXT = ("Wilhelmina Abernathy, MRN 4471923, DOB 1948-03-02, phone 555-0142, seen by Dr. Kowalski.\n"
        "Assessment: type 2 diabetes mellitus without complications, on metformin.\n"
        "Essential hypertension, well controlled. Denies chest pain.\n"
        "Plan: recheck HbA1c for the diabetes in three months.")
EVIDENCE = {"E11.9": ["type 2 diabetes mellitus without complications", "HbA1c for the diabetes"], "I10": ["Essential hypertension"]}


@pytest.fixture(scope="module")
def artifacts() -> Path:
    out = Path(os.environ.get("ICDCODER_TEST_ARTIFACTS") or ROOT / "test-artifacts") / "workbench"
    out.mkdir(parents=True, exist_ok=True)
    return out


@pytest.fixture
def browser(tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage", "--window-size=1500,950",
                 f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.implicitly_wait(0)
    try:
        yield driver
    finally:
        driver.quit()


def _wait(driver, condition, what: str, timeout_s: float = 20):
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    # the page re-renders from each server answer: an element found a moment ago may be replaced
    return WebDriverWait(driver, timeout_s, poll_frequency=0.1, ignored_exceptions=(StaleElementReferenceException,)).until(lambda d: condition(d), message=f"timed out waiting for {what}")


def _highlights(driver) -> dict[str, list[tuple[int, int, str]]]:
    """code -> (start, end, shown text) of every highlighted piece, adjacent pieces joined."""
    from selenium.webdriver.common.by import By

    out: dict[str, list[tuple[int, int, str]]] = {}
    for mark in driver.find_elements(By.CSS_SELECTOR, "mark.ev"):
        start, end, shown = int(mark.get_attribute("data-start")), int(mark.get_attribute("data-end")), mark.text
        for code in mark.get_attribute("data-codes").split():
            spans = out.setdefault(code, [])
            if spans and spans[-1][1] == start:
                spans[-1] = (spans[-1][0], end, spans[-1][2] + shown)
            else:
                spans.append((start, end, shown))
    return out


def test_a_coder_works_an_item_in_the_browser(workbench, browser, artifacts):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    wb = workbench
    wb.add_note("visit-1", "Encounter/shift-1", TEXT, EVIDENCE, scores={"E11.9": 0.83, "I10": 0.61}, subject="Patient/p-77")
    driver = browser
    driver.get(f"{wb.url}/login#token={wb.server.token('coder-7', 'coder')}")
    _wait(driver, lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "true", "the page to start")
    assert "coder-7" in driver.find_element(By.ID, "who").text
    assert "1" in driver.find_element(By.CSS_SELECTOR, '[data-count="queued"]').text

    driver.find_element(By.ID, "claim-next").click()
    _wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "mark.ev"), "the evidence highlights")
    assert driver.find_element(By.ID, "item-id").text == "Encounter/shift-1"
    # every code's evidence is highlighted at exactly its characters of the original text
    shown = _highlights(driver)
    for code, phrases in EVIDENCE.items():
        expected = sorted((TEXT.index(p), TEXT.index(p) + len(p), p) for p in phrases)
        assert shown[code] == expected, (code, shown[code], expected)
    assert driver.find_element(By.CSS_SELECTOR, ".note-text").text.replace("\n", " ") == TEXT.replace("\n", " ")
    rows = driver.find_elements(By.CSS_SELECTOR, "#suggested .code-row")
    assert [r.get_attribute("data-code") for r in rows] == ["E11.9", "I10"]
    assert "threshold 0.400" in rows[0].text and "bert_xml v3" in rows[0].text

    # clicking a code marks its evidence; clicking a highlight names its code
    rows[1].find_element(By.CSS_SELECTOR, "button.code").click()
    active = driver.find_elements(By.CSS_SELECTOR, "mark.ev.active")
    assert active and all("I10" in m.get_attribute("data-codes").split() for m in active)
    e11_mark = [m for m in driver.find_elements(By.CSS_SELECTOR, "mark.ev") if m.get_attribute("data-codes") == "E11.9"][0]
    e11_mark.click()
    _wait(driver, lambda d: "Evidence for E11.9" in d.find_element(By.ID, "banner").text, "the highlight's code")
    driver.save_screenshot(str(artifacts / "workbench-claimed.png"))

    # accept E11.9 with the button, reject I10 with the keyboard (j, r), add a code through the search
    driver.find_element(By.CSS_SELECTOR, '#suggested .code-row[data-code="E11.9"] button.accept').click()
    _wait(driver, lambda d: "accept" in d.find_element(By.CSS_SELECTOR, '#suggested .code-row[data-code="E11.9"]').get_attribute("class"), "accept")
    body = driver.find_element(By.TAG_NAME, "body")
    body.send_keys("j")
    body.send_keys("r")
    _wait(driver, lambda d: "reject" in d.find_element(By.CSS_SELECTOR, '#suggested .code-row[data-code="I10"]').get_attribute("class"), "reject")
    body.send_keys("/")
    search = driver.find_element(By.ID, "code-search")
    assert driver.switch_to.active_element == search
    search.send_keys("hyperlipidemia unspec")
    _wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#search-results .result"), "search results")
    assert driver.find_elements(By.CSS_SELECTOR, "#search-results .result")[0].get_attribute("data-code") == "E78.5"
    search.send_keys(Keys.ENTER)
    _wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, '#added .code-row[data-code="E78.5"]'), "the added code")
    _wait(driver, lambda d: d.find_element(By.ID, "complete").is_enabled(), "complete to be enabled")
    driver.save_screenshot(str(artifacts / "workbench-decided.png"))

    driver.find_element(By.TAG_NAME, "body").send_keys("c")
    _wait(driver, lambda d: "Completed Encounter/shift-1" in d.find_element(By.ID, "banner").text, "completion")
    driver.save_screenshot(str(artifacts / "workbench-completed.png"))

    # the FHIR feedback Bundle with exactly those decisions, by the signed-in coder
    records = read_topic(wb.kafka.bootstrap_servers, wb.kafka.feedback_topic, expected=1, timeout_s=30)
    assert len(records) == 1
    decision = json.loads(dict(records[0].headers)[DECISION_HEADER])
    assert decision["coder"] == "coder-7" and decision["item_id"] == "Encounter/shift-1"
    assert {(d["code"], d["action"]) for d in decision["decisions"]} == {("E11.9", "accept"), ("I10", "reject"), ("E78.5", "add")}
    bundle = json.loads(records[0].value)
    conditions = {e["resource"]["code"]["coding"][0]["code"]: e["resource"]["verificationStatus"]["coding"][0]["code"]
                  for e in bundle["entry"] if e["resource"]["resourceType"] == "Condition"}
    assert conditions == {"E11.9": "confirmed", "I10": "refuted", "E78.5": "confirmed"}

    # the planted PHI went through the whole flow and is in no log line and no Redis key or value
    logs, stored = wb.server.logs(), wb.redis_dump()
    assert "Encounter/shift-1" in logs and "Encounter/shift-1" in stored  # the checks look at the right places
    for value in PHI + ["metformin", "Denies chest pain"]:
        assert value not in logs, f"{value!r} in the workbench log"
        assert value not in stored, f"{value!r} in Redis"
