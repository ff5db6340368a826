#!/usr/bin/env python3
"""Drives farm's dashboard in headless Chromium (Debian's chromium and chromium-driver, through
Selenium): notes what the page says behind the token prompt, enters the token, waits for a
job's row, checks that its progress advances without a reload, notes the order of the job rows
and the rates of busy workers, saves a screenshot, cancels the job from the page and waits for
the row to say so, and collects any Content-Security-Policy violation the browser logged.
Prints one JSON object with what it saw; exits non-zero on any failure.

Run by tests/tests/dashboard.rs; by hand:
  python3 tests/browser/dashboard.py --url http://127.0.0.1:7080/ --job 1 --screenshot out.png
"""
import argparse
import json
import sys
import time

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait


def browser(width, height):
    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                f"--window-size={width},{height}", "--hide-scrollbars"):
        opts.add_argument(arg)
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)


def row_attr(driver, job, name):
    rows = driver.find_elements(By.CSS_SELECTOR, f'#jobs tr[data-job="{job}"]')
    return rows[0].get_attribute(name) if rows else None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--job", required=True)
    ap.add_argument("--token")
    ap.add_argument("--screenshot", required=True)
    ap.add_argument("--phone-screenshot")
    ap.add_argument("--timeout", type=float, default=60)
    ap.add_argument("--no-cancel", action="store_true")
    ap.add_argument("--height", type=int, default=1200)
    a = ap.parse_args()
    seen = {}
    driver = browser(1280, a.height)
    wait = WebDriverWait(driver, a.timeout, poll_frequency=0.1)
    try:
        driver.get(a.url)
        if a.token:
            wait.until(lambda d: d.find_element(By.ID, "token-input").is_displayed())
            seen["asked_for_token"] = True
            seen["behind_token"] = [driver.find_element(By.ID, e).text
                                    for e in ("jobs-empty", "workers-empty")]
            driver.find_element(By.ID, "token-input").send_keys(a.token)
            driver.find_element(By.CSS_SELECTOR, "#token-form button").click()
        # A marker that a reload would wipe.
        driver.execute_script("window.__farmNoReload = 'still here';")
        wait.until(lambda d: row_attr(d, a.job, "data-done") is not None)
        first = int(row_attr(driver, a.job, "data-done"))
        wait.until(lambda d: int(row_attr(d, a.job, "data-done") or 0) > first + 1)
        later = int(row_attr(driver, a.job, "data-done"))
        seen.update(first_done=first, later_done=later,
                    state_before=row_attr(driver, a.job, "data-state"))
        seen["row_order"] = [r.get_attribute("data-job")
                             for r in driver.find_elements(By.CSS_SELECTOR, "#jobs tbody tr")]
        # Busy workers show a rate: the rate column of every worker row.
        seen["worker_rates"] = [r.find_elements(By.TAG_NAME, "td")[6].text
                                for r in driver.find_elements(By.CSS_SELECTOR, "#workers tbody tr")]
        # Let the chart draw a few points before the picture.
        wait.until(lambda d: d.execute_script(
            "return lastFrame && lastFrame.throughput.filter(p => p[1] > 0).length") >= 2)
        driver.save_screenshot(a.screenshot)
        if a.phone_screenshot:
            driver.set_window_size(390, 844)
            time.sleep(0.5)  # a resize has no event to wait for; the picture is not checked
            driver.save_screenshot(a.phone_screenshot)
            driver.set_window_size(1280, a.height)
        if not a.no_cancel:
            button = driver.find_element(By.CSS_SELECTOR, f'button.cancel[data-job="{a.job}"]')
            button.click()  # arms it
            wait.until(lambda d: button.get_attribute("data-armed") == "1")
            button.click()  # confirms
            wait.until(lambda d: row_attr(d, a.job, "data-state") == "cancelled")
            seen["state_after"] = row_attr(driver, a.job, "data-state")
        seen["no_reload"] = driver.execute_script("return window.__farmNoReload") == "still here"
        seen["connection"] = driver.find_element(By.ID, "conn").text
        seen["csp_violations"] = [e["message"] for e in driver.get_log("browser")
                                  if "Content Security Policy" in e["message"]]
    finally:
        driver.quit()
    print(json.dumps(seen))


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # one line for the Rust test's failure message
        print(f"dashboard.py failed: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)
