"""The console in a real browser: headless Chromium (Debian's chromium and chromium-driver, which
.ci/run installs when missing) driven by Selenium against a real `goald run`.

Logs in with the first start's printed password, disables a job and sees it disabled (and its
next occurrence recorded `skipped_disabled`), presses run now on another job and sees its
`manual` row, watches a live value change without the page reloading, and logs out. Screenshots
of the jobs page and the stagger timeline go to $GOALD_TEST_ARTIFACTS (default: the test's
tmp directory); their paths are printed.

Without Chromium the test is skipped, except under CI (CI=true), where that is a failure.
"""
import os
import re
import shutil
import time
from pathlib import Path

import pytest

from daemon_support import Goald
from support import sql

TESTS_DIR = str(Path(__file__).parent)
CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")


@pytest.fixture
def browser():
    if not (CHROMIUM and CHROMEDRIVER):
        if os.environ.get("CI"):
            pytest.fail("chromium and chromedriver are missing: .ci/run installs Debian's chromium and "
                        "chromium-driver")
        pytest.skip("no chromium / chromedriver here (apt-get install chromium chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1500,1100",
                "--disable-gpu", "--no-first-run", "--disable-extensions"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def wait_until(check, timeout=20, what="the page"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            got = check()
        except Exception:  # an element replaced by a refresh between find and read
            got = None
        if got:
            return got
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}")


def test_an_operator_drives_the_console_in_a_real_browser(db_dsn, tmp_path, browser):
    from selenium.webdriver.common.by import By

    sql(db_dsn, "CREATE TABLE test_counter (n int)")
    sql(db_dsn, "INSERT INTO test_counter VALUES (0)")
    g = Goald(tmp_path, "browser", GOALD_DATABASE_URL=db_dsn, GOALD_JOBS_MODULES="jobs_for_tests",
              PYTHONPATH=TESTS_DIR, GOALD_PROVIDER_DEMO_MATCHES="40", GOALD_JOB_TEST_COUNT_ENABLED="true",
              GOALD_JOB_TEST_SLEEP_ENABLED="true", GOALD_TEST_SLEEP_S="0", GOALD_TEST_SLEEP_EVERY_S="3600",
              GOALD_JOBS_FLAG_POLL_S="0.5")
    shots = Path(os.environ.get("GOALD_TEST_ARTIFACTS") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    try:
        g.wait_ready()
        password = re.search(r"password (\S+) \(shown only now", g.stdout).group(1)
        wait_until(lambda: sql(db_dsn, "SELECT count(*) FROM job_runs WHERE job = 'test_count' "
                                       "AND outcome = 'succeeded'")[0][0] > 0, what="test_count's first run")
        d = browser

        # Anonymous: the jobs page sends the browser to the login form.
        d.get(g.url("/admin/jobs"))
        assert "/admin/login" in d.current_url
        d.find_element(By.ID, "name").send_keys("admin")
        d.find_element(By.ID, "password").send_keys(password)
        d.find_element(By.ID, "login").click()
        wait_until(lambda: d.current_url.endswith("/admin/jobs"), what="the jobs page after login")
        assert d.find_element(By.ID, "job-test_count") and "admin (admin)" in d.find_element(By.CLASS_NAME, "who").text

        # Disable test_count: the page says so, and its next occurrence is recorded skipped_disabled.
        row = d.find_element(By.ID, "job-test_count")
        row.find_element(By.CSS_SELECTOR, "button.toggle").click()
        wait_until(lambda: "test_count disabled" in d.find_element(By.CLASS_NAME, "message").text,
                   what="the disabled message")
        assert d.find_element(By.CSS_SELECTOR, "#job-test_count td.enabled").text == "no"
        disabled_at = time.time()
        wait_until(lambda: sql(db_dsn, "SELECT count(*) FROM job_runs WHERE job = 'test_count' AND outcome = "
                                       "'skipped_disabled' AND scheduled_at > to_timestamp(%s)",
                               (disabled_at,))[0][0] > 0, what="a skipped_disabled occurrence")

        # Run now on test_sleep: one manual row, shown on the page.
        d.find_element(By.ID, "job-test_sleep").find_element(By.CSS_SELECTOR, "button.run").click()
        wait_until(lambda: "test_sleep: run now" in d.find_element(By.CLASS_NAME, "message").text,
                   what="the run-now message")
        wait_until(lambda: sql(db_dsn, "SELECT trigger, outcome FROM job_runs WHERE job = 'test_sleep' "
                                       "AND outcome <> 'running'") == [("manual", "succeeded")],
                   what="test_sleep's manual row")
        wait_until(lambda: "manual" in d.find_element(By.CSS_SELECTOR, "#job-test_sleep td.outcome").text,
                   what="the manual tag on the jobs page")
        d.save_screenshot(str(shots / "console-jobs.png"))

        # A live value changes without the page reloading: a marker set in the page survives.
        d.execute_script("window.__notReloaded = true;")
        before = d.find_element(By.ID, "generated-at").text
        wait_until(lambda: d.find_element(By.ID, "generated-at").text != before, timeout=15,
                   what="the live part to refresh")
        assert d.execute_script("return window.__notReloaded === true;")

        # The stagger timeline draws the jobs.
        d.get(g.url("/admin/timeline"))
        chart = d.find_element(By.ID, "timeline-chart")
        assert "test_sleep" in chart.text or d.find_elements(By.CSS_SELECTOR, "#timeline-chart rect.bar")
        d.save_screenshot(str(shots / "console-timeline.png"))

        # Log out: the console asks for a login again.
        d.find_element(By.ID, "logout").click()
        wait_until(lambda: "/admin/login" in d.current_url, what="the login page after logout")
        d.get(g.url("/admin/jobs"))
        assert "/admin/login" in d.current_url
        print(f"screenshots: {shots / 'console-jobs.png'} {shots / 'console-timeline.png'}")
    finally:
        g.cleanup()
