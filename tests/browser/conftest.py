"""A real Chromium (Debian's `chromium` + `chromium-driver`) driven by Selenium against a
real `ingest serve`. Without the browser this tier fails with the install command: it
never passes silently."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
INSTALL = "apt-get install -y chromium chromium-driver   (as root; ./scripts/setup does it)"


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[object]:
    missing = [
        p
        for p in (CHROMIUM, CHROMEDRIVER)
        if not Path(p).exists() and not shutil.which(Path(p).name)
    ]
    if missing:
        pytest.fail(f"tests/browser need {', '.join(missing)}: {INSTALL}", pytrace=False)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1280,900",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(
        options=options,
        service=Service(
            executable_path=CHROMEDRIVER, log_output=str(tmp_path / "chromedriver.log")
        ),
    )
    try:
        yield driver
    finally:
        driver.quit()
