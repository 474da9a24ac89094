"""Drives the console in headless Chromium, as an operator would, and checks what it shows.

Run by ConsoleBrowserTests.swift, which starts the stack first. Arguments come from the
environment:
  CONSOLE_URL      the console, e.g. http://127.0.0.1:9470
  WORKFLOW_ID      a document_onboarding workflow parked on its analysis step
  JOB_ID           a completed training job
  SIGNALS_ID       an echo_signals workflow waiting for signals
  CHAIN_ID         an echo_chain workflow that completed (two steps)
  SCREENSHOTS      the folder the pages' screenshots go to
Every check that fails raises, with what the page showed; the exit status says it all.
"""
import os
import re
from urllib.parse import quote
import sys
import time

from selenium import webdriver
from selenium.common.exceptions import TimeoutException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as conditions
from selenium.webdriver.support.ui import WebDriverWait

console = os.environ["CONSOLE_URL"].rstrip("/")
workflow_id = os.environ["WORKFLOW_ID"]
job_id = os.environ["JOB_ID"]
signals_id = os.environ["SIGNALS_ID"]
chain_id = os.environ["CHAIN_ID"]
screenshots = os.environ["SCREENSHOTS"]
os.makedirs(screenshots, exist_ok=True)

options = webdriver.ChromeOptions()
options.binary_location = "/usr/bin/chromium"
for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1280,1000", "--lang=en-US"):
    options.add_argument(argument)
browser = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
wait = WebDriverWait(browser, 60)


def step(text):
    print("browser:", text, flush=True)


def check(condition, what):
    if not condition:
        raise AssertionError("%s\n--- page %s ---\n%s" % (what, browser.current_url, browser.find_element(By.TAG_NAME, "main").text[:3000]))


# While a page is being replaced, Chromium's driver can answer a question about an element
# of the old page with "Node with given id does not belong to the document" rather than
# "stale element" (it did, once, in CI). So the wait for the new page does not ask about
# the old page's elements: it marks the old page's window and waits for a window without
# the mark, treating any error on the way as "not yet".
navigation = WebDriverWait(browser, 60, ignored_exceptions=(WebDriverException,))


def submit(button_id, then_id):
    """Clicks a form's button and waits for the page it leads to (the element `then_id`)."""
    browser.execute_script("window.flowPageBeforeSubmit = true")
    browser.find_element(By.ID, button_id).click()
    navigation.until(lambda driver: driver.execute_script("return window.flowPageBeforeSubmit === undefined && document.readyState !== 'loading'"))
    navigation.until(conditions.presence_of_element_located((By.ID, then_id)))


def until(seconds, what, ready):
    """Calls `ready` once a second until it answers true, or fails with `what` after `seconds`."""
    deadline = time.time() + seconds
    while not ready():
        check(time.time() < deadline, what)
        time.sleep(1)


def workflow_status(workflow):
    """Opens a workflow's page and returns the status it shows."""
    browser.get("%s/workflows/%s" % (console, workflow))
    return wait.until(conditions.presence_of_element_located((By.ID, "workflow-status"))).text


def shot(name):
    browser.save_screenshot(os.path.join(screenshots, name + ".png"))


def accessible(page):
    """Basic checks: a language, one h1, labels for every field, named buttons, a skip link."""
    check(browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == "en", page + ": <html> has no lang")
    check(len(browser.find_elements(By.TAG_NAME, "h1")) == 1, page + ": not exactly one h1")
    for field in browser.find_elements(By.CSS_SELECTOR, "input:not([type=hidden]), select"):
        field_id = field.get_attribute("id")
        check(field_id and browser.find_elements(By.CSS_SELECTOR, "label[for='%s']" % field_id), page + ": a field has no label: " + field.get_attribute("outerHTML"))
    for button in browser.find_elements(By.TAG_NAME, "button"):
        check(button.text.strip(), page + ": a button has no text")
    skip = browser.find_element(By.CSS_SELECTOR, "a.skip")
    browser.find_element(By.TAG_NAME, "body").send_keys(Keys.TAB)
    check(browser.switch_to.active_element == skip, page + ": the first Tab does not reach the skip link")


try:
    # The parked workflow: its page names the parked step, with a Replay button.
    step("the parked workflow")
    browser.get("%s/workflows/%s" % (console, workflow_id))
    wait.until(conditions.presence_of_element_located((By.ID, "workflow-status")))
    check(browser.find_element(By.ID, "workflow-status").text == "parked", "the workflow is not shown parked")
    reason = browser.find_element(By.ID, "parked-reason").text
    check("analyze_document_content" in reason, "the parked reason does not name the parked step: " + reason)
    check(browser.find_elements(By.CSS_SELECTOR, ".step.parked"), "no step is shown parked on the timeline")
    branches = browser.find_elements(By.CSS_SELECTOR, "ol.timeline > li")
    check(len(branches) == 2, "the analysis runs beside the training, so the graph has two branches, not %d" % len(branches))
    shot("workflow-parked")
    accessible("workflow")

    # Pause and unpause: the page says why it is paused, and the buttons swap.
    step("pause and unpause")
    submit("pause", "action-result")
    result = browser.find_element(By.ID, "action-result").text
    check("paused" in result, "the pause was not confirmed: " + result)
    browser.get("%s/workflows/%s" % (console, workflow_id))
    wait.until(conditions.presence_of_element_located((By.ID, "paused-reason")))
    check("from the console" in browser.find_element(By.ID, "paused-reason").text, "the page does not say who paused the workflow")
    check(not browser.find_elements(By.ID, "pause"), "a paused workflow still offers Pause")
    submit("unpause", "action-result")
    result = browser.find_element(By.ID, "action-result").text
    check("unpaused" in result, "the unpause was not confirmed: " + result)
    browser.get("%s/workflows/%s" % (console, workflow_id))
    wait.until(conditions.presence_of_element_located((By.ID, "workflow-status")))
    check(not browser.find_elements(By.ID, "paused-reason"), "the unpaused workflow is still shown paused")
    check(browser.find_elements(By.ID, "workflow-search"), "the page does not show the workflow's search attributes")

    # Replay the parked message; the OpenAI worker, now running, answers; the page shows
    # the workflow complete.
    step("replay")
    submit("replay", "action-result")
    result = browser.find_element(By.ID, "action-result").text
    check("Replayed 1 message" in result, "the replay did not replay one message: " + result)
    def replayed():
        status = workflow_status(workflow_id)
        check(status in ("parked", "running", "completed"), "the workflow ended " + status)
        return status == "completed"

    until(180, "the workflow did not complete within three minutes of the replay", replayed)
    check(browser.find_elements(By.ID, "workflow-output"), "the completed workflow shows no output")
    shot("workflow-completed")

    # The list: filters by status and by text in the id.
    step("the workflow list")
    browser.get(console + "/workflows")
    shot("workflows")
    accessible("workflows")
    browser.find_element(By.ID, "q").send_keys(workflow_id)
    submit("filter", "workflow-rows")
    rows = browser.find_elements(By.CSS_SELECTOR, "#workflow-rows tr")
    check(len(rows) == 1 and workflow_id in rows[0].text, "searching the id does not find exactly the workflow")
    # The same workflow by its search attributes; a filter that cannot be read says why.
    browser.get(console + "/workflows")
    browser.find_element(By.ID, "where").send_keys("document_words >= 1 AND status = completed")
    submit("filter", "workflow-rows")
    rows = browser.find_elements(By.CSS_SELECTOR, "#workflow-rows tr")
    check(any(workflow_id in row.text for row in rows), "the Where filter does not find the workflow by its search attributes")
    browser.get(console + "/workflows?where=" + quote("pages >>= 3"))
    check("character" in browser.page_source, "an unreadable filter is not refused with where it stopped")

    # Signal and query: a signal sent from the page reaches the workflow's code, and the
    # query answers from its state.
    step("signal and query")
    browser.get("%s/workflows/%s" % (console, signals_id))
    wait.until(conditions.presence_of_element_located((By.ID, "send-signal")))
    accessible("workflow with its forms")
    browser.find_element(By.ID, "signal-name").send_keys("add")
    browser.find_element(By.ID, "signal-input").send_keys('"from the browser"')
    submit("send-signal", "action-result")
    result = browser.find_element(By.ID, "action-result").text
    check("recorded" in result, "the signal was not recorded: " + result)
    def answered():
        workflow_status(signals_id)
        browser.find_element(By.ID, "query-name").send_keys("texts")
        submit("run-query", "query-answer")
        return "from the browser" in browser.find_element(By.ID, "query-answer").text

    until(60, "the query never showed the signalled text", answered)
    answer = browser.find_element(By.ID, "query-answer").text
    check("first" in answer, "the query's answer lacks the first text: " + answer)
    shot("workflow-query")
    browser.get("%s/workflows/%s" % (console, signals_id))
    browser.find_element(By.ID, "query-name").send_keys("nothing")
    submit("run-query", "problem")
    check("answers no query named nothing" in browser.find_element(By.ID, "problem").text, "an unknown query is not refused with the names there are")

    # Reset: the completed echo_chain runs again from its second step, in a second run.
    step("reset")
    browser.get("%s/workflows/%s" % (console, chain_id))
    wait.until(conditions.presence_of_element_located((By.ID, "reset-position")))
    options = [option.text for option in browser.find_elements(By.CSS_SELECTOR, "#reset-position option")]
    check(len(options) == 3 and "echo" in options[1], "the Reset form does not offer the two steps and the end: %s" % options)
    browser.find_element(By.CSS_SELECTOR, "#reset-position option[value='1']").click()
    submit("reset", "action-result")
    result = browser.find_element(By.ID, "action-result").text
    check("run 2 goes on from there" in result, "the reset was not confirmed: " + result)
    until(60, "the reset workflow did not complete its second run",
          lambda: workflow_status(chain_id) == "completed" and browser.find_elements(By.ID, "workflow-runs"))
    runs = browser.find_element(By.ID, "workflow-runs").text
    check(chain_id + "@run-1" in runs, "the page does not list the run before: " + runs)
    shot("workflow-reset")

    # Bulk: a preview that changes nothing, then the action on each workflow it listed.
    step("bulk actions")
    browser.get(console + "/workflows?where=" + quote("name = echo_signals AND status = running"))
    wait.until(conditions.presence_of_element_located((By.ID, "bulk-preview")))
    accessible("workflows with the bulk form")
    submit("bulk-preview", "bulk-list")
    check("nothing was changed" in browser.find_element(By.ID, "bulk-summary").text, "the preview does not say it changed nothing")
    listed = [item.text for item in browser.find_elements(By.CSS_SELECTOR, "#bulk-list li")]
    check(len(listed) == 1 and signals_id in listed[0], "the preview does not list exactly the running echo_signals workflow: %s" % listed)
    shot("workflows-bulk-preview")
    check(workflow_status(signals_id) == "running", "the preview changed the workflow")
    browser.get(console + "/workflows?where=" + quote("name = echo_signals AND status = running"))
    submit("bulk-preview", "bulk-confirm")
    submit("bulk-confirm", "action-result")
    result = browser.find_element(By.ID, "action-result").text
    check("1 of 1 done" in result, "the bulk cancel was not done: " + result)
    until(60, "the bulk-cancelled workflow did not end cancelled", lambda: workflow_status(signals_id) == "cancelled")

    # Dead letters: the filter, the dry run, and the purge that asks first.
    step("dead letters")
    browser.get(console + "/dead-letters")
    shot("dead-letters")
    accessible("dead letters")
    total = int(re.search(r"(\d+) of (\d+)", browser.find_element(By.ID, "dead-letter-count").text).group(2))
    check(total >= 3, "the test made three dead letters; the page counts %d" % total)
    browser.find_element(By.ID, "activity").send_keys("evaluate_model")
    submit("filter", "dead-letter-rows")
    filtered = browser.find_elements(By.CSS_SELECTOR, "#dead-letter-rows tr")
    check(len(filtered) == 2 and all("evaluate_model" in row.text for row in filtered), "the activity filter does not keep exactly the two evaluate_model letters")
    submit("replay-preview", "replay-list")
    preview = browser.find_elements(By.CSS_SELECTOR, "#replay-list li")
    check(len(preview) == 2, "the dry run does not list the two filtered letters")
    check("nothing was sent" in browser.find_element(By.TAG_NAME, "main").text, "the dry run does not say it sent nothing")
    shot("dead-letters-dry-run")
    browser.get(console + "/dead-letters?activity=evaluate_model")
    submit("purge", "purge-list")
    check(len(browser.find_elements(By.CSS_SELECTOR, "#purge-list li")) == 2, "the purge confirmation does not list the two letters")
    browser.get(console + "/dead-letters?activity=evaluate_model")
    check(len(browser.find_elements(By.CSS_SELECTOR, "#dead-letter-rows tr")) == 2, "asking to purge removed letters before the confirmation")
    submit("purge", "purge-confirm")
    submit("purge-confirm", "action-result")
    check("Purged 2 message" in browser.find_element(By.ID, "action-result").text, "the confirmed purge did not purge two")
    browser.get(console + "/dead-letters")
    left = int(re.search(r"(\d+) of (\d+)", browser.find_element(By.ID, "dead-letter-count").text).group(2))
    check(left == total - 2, "after the purge %d letters are left, not %d" % (left, total - 2))

    # The training job: one point on the loss curve per logged step.
    step("the training job")
    browser.get("%s/training/%s" % (console, job_id))
    curve = browser.find_element(By.CSS_SELECTOR, "svg.loss-curve")
    points = curve.find_elements(By.CSS_SELECTOR, "circle.point")
    steps = int(re.match(r"(\d+)", browser.find_element(By.XPATH, "//dt[text()='Step']/following-sibling::dd").text).group(1))
    check(steps > 0 and len(points) == steps, "the loss curve has %d points for %d steps" % (len(points), steps))
    check(curve.get_attribute("data-points") == str(steps), "the curve's point count attribute disagrees")
    shot("training-job")
    accessible("training job")

    for page in ("queues", "schedules", "training", "costs"):
        step(page)
        browser.get("%s/%s" % (console, page))
        shot(page)
        accessible(page)
    check("$" in browser.find_element(By.ID, "spent-today").text, "the costs page shows no spend")
    step("all checks passed")
except TimeoutException as error:
    print("browser: timed out:", error, "\n", browser.find_element(By.TAG_NAME, "body").text[:3000], file=sys.stderr)
    sys.exit(1)
except AssertionError as error:
    print("browser:", error, file=sys.stderr)
    sys.exit(1)
finally:
    browser.quit()
