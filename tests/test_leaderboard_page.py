"""The leaderboard's static HTML page in real headless Chromium: the tables carry the numbers, the plot loads."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from benchmarks.leaderboard.report import write_report
from benchmarks.leaderboard.runner import RunConfig, run_leaderboard
from benchmarks.leaderboard.specs import parse_agents
from benchmarks.leaderboard.suites import parse_suite
from benchmarks.leaderboard.tables import table_cells

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


@pytest.fixture
def browser(tmp_path):
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        pytest.skip("Chromium and chromedriver are not installed (make browser)")
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    os.environ["SE_AVOID_STATS"] = "true"
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--no-first-run", f"--user-data-dir={tmp_path / 'chromium-profile'}"):  # fmt: skip
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(tmp_path / "chromium-profile", ignore_errors=True)


def test_the_page_shows_the_tables_and_the_plots(tmp_path, browser):
    from selenium.webdriver.common.by import By

    out = tmp_path / "board"
    run_leaderboard(
        parse_agents(["expert", "random"]),
        [parse_suite("keyword"), parse_suite("alfworld")],
        RunConfig(out, episodes=2, seeds=2, num_envs=2, progress=False, env_kwargs={"max_steps": 40}),
    )
    written = write_report(out)
    tables = json.loads(written["json"].read_text())["suites"]
    browser.get(written["html"].resolve().as_uri())
    assert browser.title == "skill-gym leaderboard"
    for key, table in tables.items():
        element = browser.find_element(By.CSS_SELECTOR, f'table.leaderboard[data-suite="{key}"]')
        header = [th.text for th in element.find_elements(By.CSS_SELECTOR, "thead th")]
        assert header == ["Agent", "Source", "Model", "Size", *table["columns"], "Episodes", "Failed"]
        shown = [[td.text for td in tr.find_elements(By.TAG_NAME, "td")]
                 for tr in element.find_elements(By.CSS_SELECTOR, "tbody tr")]  # fmt: skip
        assert shown == [table_cells(row, table["columns"]) for row in table["rows"]]
    alfworld = browser.find_element(By.CSS_SELECTOR, 'table[data-suite="alfworld:eval_out_of_distribution"]')
    expert = next(tr for tr in alfworld.find_elements(By.CSS_SELECTOR, "tbody tr.ours") if "expert" in tr.text)
    assert expert.find_elements(By.TAG_NAME, "td")[10].text == "100.0 ± 0.0"  # the All column
    assert "reported" in alfworld.text and "Skill1" in alfworld.text
    images = browser.find_elements(By.CSS_SELECTOR, "img.plot")
    assert len(images) == len(tables)
    for image in images:
        width = browser.execute_script("return arguments[0].complete && arguments[0].naturalWidth", image)
        assert width and width > 300, image.get_attribute("src")
