"""The moderator UI in headless Chromium against the running local stack: what a moderator
sees, and what reached the tables."""

import re

import httpx
import pytest
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.slow

INSULT = "shut up, you stupid idiot, nobody wants your edits"


def check(page: Page, text: str) -> None:
    page.get_by_role("textbox", name="Comment", exact=True).fill(text)
    page.get_by_role("button", name="Check", exact=True).click()
    expect(page.get_by_text("Decision:")).to_be_visible()


def test_check_a_comment_and_submit_a_correction(local_stack, page, screenshots):
    # GIVEN the moderator UI
    page.goto(local_stack.web_url)
    # WHEN a moderator checks an insult
    check(page, INSULT)
    # THEN the page shows the decision the API logged, and the n-grams behind it
    (logged,) = [p for p in local_stack.items("prediction") if p["comment_text"] == INSULT]
    expect(page.get_by_text(f"Decision: {logged['decision'].upper()}")).to_be_visible()
    assert logged["labels"], "an insult should be flagged"
    expect(page.locator("mark").first).to_be_visible()
    page.screenshot(path=screenshots / "web-check.png", full_page=True)

    # WHEN the moderator says it is wrong: the true label is insult only, with a note
    page.get_by_text("Incorrect", exact=True).click()
    true_labels = page.get_by_role("combobox", name="The true labels")
    true_labels.click()
    true_labels.press_sequentially("insult")
    page.keyboard.press("Enter")
    page.keyboard.press("Escape")
    page.get_by_role("textbox", name="Note (optional)").fill("only an insult")
    page.get_by_role("button", name="Submit feedback").click()
    # THEN the page says so and the feedback is in the log, against that prediction
    expect(page.get_by_text("Feedback recorded")).to_be_visible()
    (feedback,) = [f for f in local_stack.items("feedback") if f["pk"] == logged["pk"]]
    assert feedback["true_labels"] == ["insult"] and feedback["notes"] == "only an insult"
    assert feedback["correct"] is False and feedback["source"] == "api"


def clear_review_queue(api_url: str) -> None:
    """Decide every pending item (earlier tests' seeded traffic leaves some): the queue shows
    10 items, oldest first, and the test's item must be among them."""
    while items := httpx.get(f"{api_url}/reviews", params={"limit": 100}).json()["items"]:
        for item in items:
            decided = httpx.post(
                f"{api_url}/reviews/{item['request_id']}",
                json={"action": "approve", "moderator": "e2e-setup"},
            )
            assert decided.status_code in (200, 201, 409), decided.text


def test_work_one_review_item(local_stack, page, screenshots):
    # GIVEN a comment the API sent to human review, alone in the queue
    clear_review_queue(local_stack.api_url)
    text = "please stop reverting my edits on this page"
    queued = httpx.post(
        f"{local_stack.api_url}/predict",
        json={"comment_text": text, "thresholds": dict.fromkeys(["toxic", "insult"], 0.0)},
    ).json()
    assert queued["decision"] == "review"
    page.goto(local_stack.web_url)
    page.get_by_role("link", name="Review queue").click()
    expect(page.get_by_role("heading", name="Review queue")).to_be_visible()
    expect(page.get_by_text("1 pending, oldest first")).to_be_visible()
    item = page.locator(f".st-key-review-{queued['request_id']}")
    expect(item).to_be_visible()
    # the name is taken once the page has run again with it: the warning is gone and the
    # buttons are enabled (a click before that would find them disabled)
    page.get_by_role("textbox", name="Moderator name").fill("alice")
    page.get_by_role("textbox", name="Moderator name").press("Enter")
    expect(page.get_by_text("Enter your name in the sidebar")).to_have_count(0)
    approve = item.get_by_role("button", name="Approve: fine")
    expect(approve).to_be_enabled()
    page.screenshot(path=screenshots / "web-review.png", full_page=True)
    # WHEN alice approves it (the comment is fine)
    approve.click()
    # THEN the page confirms, the item left the queue, and the decision is in the log
    expect(
        page.get_by_text(f"Recorded: approve on {queued['request_id']} by alice")
    ).to_be_visible()
    expect(page.get_by_text(text)).to_have_count(0)
    decided = [f for f in local_stack.items("feedback") if f["pk"] == queued["request_id"]]
    assert [(f["source"], f["moderator"], f["true_labels"]) for f in decided] == [
        ("moderator", "alice", [])
    ]
    (prediction,) = [p for p in local_stack.items("prediction") if p["pk"] == queued["request_id"]]
    assert prediction["review_status"] == "decided"


def test_edit_a_policy_see_its_forecast_and_save_it(local_stack, page, screenshots):
    # GIVEN logged traffic, two comments of it about pineapple on pizza
    for text in ("pineapple on pizza is great", "have a lovely day", "more pineapple please"):
        httpx.post(f"{local_stack.api_url}/predict", json={"comment_text": text})
    admin = {"x-api-key": local_stack.env["ADMIN_API_KEY"]}
    page.goto(local_stack.web_url)
    page.get_by_role("link", name="Policies").click()
    expect(page.get_by_role("heading", name="Policies")).to_be_visible()
    # WHEN an admin of a pizza-purist forum drafts a new policy that blocks "pineapple"
    # (other tests' policies may be listed first: pick "New policy…")
    page.get_by_role("combobox", name="Policy").click()
    page.get_by_role("option", name="New policy…").click()
    page.get_by_role("textbox", name="New policy id").fill("kids-forum")
    page.get_by_role("textbox", name="New policy id").press("Enter")
    forecast = page.get_by_role("button", name="Forecast this change")
    expect(forecast).to_be_enabled()
    block_terms = page.get_by_role("textbox", name="Block terms (one a line: always blocked)")
    block_terms.fill("pineapple")
    block_terms.press("Tab")
    forecast.click()
    # THEN the forecast beside it shows both moving to block, before anything is saved
    expect(page.get_by_text(re.compile(r"Decisions that change: allow->block: 2"))).to_be_visible()
    assert httpx.get(f"{local_stack.api_url}/policies", headers=admin).json()["items"] == []
    page.screenshot(path=screenshots / "web-policies.png", full_page=True)
    # WHEN it is saved  THEN the page confirms and the API serves it
    page.get_by_role("button", name="Save policy").click()
    expect(page.get_by_text("Saved kids-forum version 1.")).to_be_visible()
    saved = httpx.get(f"{local_stack.api_url}/policies/kids-forum", headers=admin).json()
    assert saved["block_terms"] == ["pineapple"] and saved["version"] == 1
