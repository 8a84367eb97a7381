"""The console as an operator uses it, in Chromium: sign in, watch the jobs list follow
a job's status without reloading, requeue one dead letter (and only it) and then the
selected ones, upload three files (one broken) and watch them finish without reloading,
search, and a viewer who can change nothing. A screenshot of each page lands in the
test's tmp dir (paths printed)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement

from ingest.store import Claim, NewJob, Store
from ingest.vocabulary import JobStatus
from tests.fixtures_docs import make_corrupt_pdf, make_md, make_txt, prose
from tests.support.processes import wait_until
from tests.support.server import serve_inline

pytestmark = pytest.mark.slow

T = TypeVar("T")
# A queue no worker of the served app takes: the test moves these jobs itself.
BY_HAND = "by-hand"
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


def run_by_hand(store: Store) -> Claim:
    """A job on a queue nobody serves, claimed by the test: it is `running`."""
    store.jobs.submit(NewJob(kind="noop", payload={}, queue=BY_HAND, max_attempts=1))
    claims = store.jobs.claim_many("browser-test", [BY_HAND], 600, 1)
    assert claims, "the job just submitted was not claimable"
    return claims[0]


def kill(store: Store, claim: Claim) -> None:
    assert store.jobs.end_attempt(claim, JobStatus.DEAD, error_type="Boom", error_message="boom")


def status_in_list(pages: Pages, job_id: str) -> str | None:
    for row in pages.all("#job-rows tbody tr"):
        if job_id[:12] in row.text:
            return row.find_element(By.CSS_SELECTOR, ".status").text
    return None


def watch_jobs_list_and_requeue_dead_letters(pages: Pages, store: Store) -> None:
    pages.open("/console/jobs")
    pages.driver.execute_script("window.notReloaded = true;")
    first = run_by_hand(store)
    job_id = first.job.id
    pages.until(lambda: status_in_list(pages, job_id) == "running", "the new job, running")
    kill(store, first)
    pages.until(lambda: status_in_list(pages, job_id) == "dead", "its new status: dead")
    assert pages.driver.execute_script("return window.notReloaded === true;")

    others = [run_by_hand(store) for _ in range(2)]
    for claim in others:
        kill(store, claim)
    dead = [job_id, *(c.job.id for c in others)]

    def status(job: str) -> str:
        found = store.jobs.get(job)
        assert found is not None
        return str(found.status)

    # One row's button requeues that row only, even with another row's box ticked.
    pages.open("/console/dead")
    pages.find(f'input[type=checkbox][value="{dead[0]}"]').click()
    row = next(r for r in pages.all("main tbody tr") if dead[1][:12] in r.text)
    row.find_element(By.XPATH, ".//button[normalize-space()='Requeue']").click()
    pages.until(lambda: status(dead[1]) == "queued", "the one requeued job")
    assert [status(dead[0]), status(dead[2])] == ["dead", "dead"]
    pages.until(lambda: dead[1][:12] not in pages.find("main").text, "the dead list, reloaded")
    # The bulk button requeues the ticked rows.
    for job in (dead[0], dead[2]):
        pages.find(f'input[type=checkbox][value="{job}"]').click()
    pages.driver.find_element(By.XPATH, "//button[normalize-space()='Requeue selected']").click()
    pages.until(lambda: [status(j) for j in dead] == ["queued"] * 3, "the selected requeued")


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
        store = Store.open(served.env["DATABASE_URL"])
        try:
            watch_jobs_list_and_requeue_dead_letters(pages, store)
        finally:
            store.close()

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
