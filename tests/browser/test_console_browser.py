"""The console as an operator uses it, in Chromium: sign in, upload three files (one
broken) and watch them finish without reloading, search, and a viewer who can change
nothing. A screenshot of each page lands in the test's tmp dir (paths printed)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement

from tests.fixtures_docs import make_corrupt_pdf, make_md, make_txt, prose
from tests.support.processes import wait_until
from tests.support.server import serve_inline

pytestmark = pytest.mark.slow

T = TypeVar("T")
OTTERS = "The otter observatory at Brindlecombe counts nineteen river otters each dawn."


class Pages:
    def __init__(self, driver: WebDriver, base: str, shots: Path) -> None:
        self.driver = driver
        self.base = base
        self.shots = shots
        self.count = 0

    def open(self, path: str) -> None:
        self.driver.get(self.base + path)

    def find(self, css: str) -> WebElement:
        return self.driver.find_element(By.CSS_SELECTOR, css)

    def all(self, css: str) -> list[WebElement]:
        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def text(self) -> str:
        return self.find("body").text

    def until(self, predicate: Callable[[], T | None], what: str, timeout: float = 180) -> T:
        def settled() -> T | None:
            # A page that is still loading or updating live replaces the element just
            # read: not an answer yet, ask again.
            try:
                return predicate()
            except StaleElementReferenceException:
                return None

        return wait_until(settled, timeout, interval=0.2, message=what)

    def shot(self, name: str) -> Path:
        self.count += 1
        path = self.shots / f"{self.count:02d}-{name}.png"
        self.driver.save_screenshot(str(path))
        print(f"screenshot: {path}")
        return path

    def sign_in(self, key: str) -> None:
        self.open("/console")
        self.until(lambda: "/console/signin" in self.driver.current_url, "the sign-in page")
        self.find("#api_key").send_keys(key)
        self.find("form.stack button[type=submit]").click()
        self.until(lambda: self.all("h1") and "Overview" in self.find("h1").text, "the overview")

    def sign_out(self) -> None:
        self.find("form.signout button").click()
        self.until(lambda: "/console/signin" in self.driver.current_url, "signed out")


def test_operator_uploads_watches_searches_and_a_viewer_changes_nothing(
    browser: Any, tmp_path: Path
) -> None:
    docs = tmp_path / "docs"
    files = [
        make_md(docs, "otters.md", f"# Otters\n\n{OTTERS}\n\n{prose(60, 1)}"),
        make_txt(docs, "notes.txt", prose(90, 2)),
        make_corrupt_pdf(docs, "broken.pdf"),
    ]
    shots = tmp_path / "screenshots"
    shots.mkdir()
    with serve_inline(tmp_path / "server") as served:
        pages = Pages(browser, served.url, shots)
        pages.sign_in(served.key("admin"))
        pages.shot("overview")

        pages.open("/console/upload")
        collection = pages.find("#collection")
        collection.clear()
        collection.send_keys("browser")
        pages.find("#files").send_keys("\n".join(str(f) for f in files))
        pages.find("#upload-form button[type=submit]").click()

        def finished() -> dict[str, str] | None:
            rows = pages.all("#uploads li.upload")
            states = {
                r.find_element(By.CSS_SELECTOR, ".name").text: r.get_attribute("data-status") or ""
                for r in rows
            }
            final = {"succeeded", "failed", "dead"}
            return states if len(states) == 3 and set(states.values()) <= final else None

        states = pages.until(finished, "three uploads to finish, without a reload")
        assert states == {
            "otters.md": "succeeded",
            "notes.txt": "succeeded",
            "broken.pdf": "failed",
        }
        broken = next(r for r in pages.all("#uploads li.upload") if "broken.pdf" in r.text)
        reason = broken.find_element(By.CSS_SELECTOR, ".state").text
        assert reason.startswith("failed: ")
        assert len(reason) > len("failed: ") + 5
        pages.shot("upload")

        pages.open("/console/search?q=otter+observatory+Brindlecombe&collection=browser")
        first = pages.until(lambda: pages.all("li.hit"), "search hits")[0]
        assert "otters.md" in first.text
        marks = [m.text.lower() for m in first.find_elements(By.CSS_SELECTOR, "mark")]
        assert "brindlecombe" in marks
        pages.shot("search")

        pages.open("/console/jobs?q=broken")
        pages.find("table.jobs tbody a").click()
        pages.until(lambda: pages.find("#job-status").text == "failed", "the failed job's page")
        assert "Retry" in pages.text()
        pages.shot("job")

        browser.set_window_size(390, 844)
        pages.open("/console")
        pages.shot("overview-phone")
        browser.set_window_size(1280, 900)
        pages.sign_out()

        pages.sign_in(served.key("viewer"))
        pages.open("/console/jobs?q=broken")
        pages.find("table.jobs tbody a").click()
        pages.until(lambda: pages.all("#job-status"), "the job page")
        buttons = [b.text for b in pages.all("main button")]
        assert buttons == []
        assert "Upload" not in pages.find("nav").text
        job_url = browser.current_url
        forged = browser.execute_async_script(
            """
            const done = arguments[arguments.length - 1];
            fetch(arguments[0] + "/retry", {method: "POST",
              headers: {"X-CSRF-Token": document.querySelector('meta[name="csrf-token"]').content}})
              .then((r) => done(r.status), () => done(-1));
            """,
            job_url,
        )
        assert forged == 403
        pages.shot("viewer-job")
        pages.sign_out()
        pages.open("/console/jobs")
        assert "/console/signin" in browser.current_url
