"""The moderator UI in headless Chromium against the running local stack: what a moderator
sees, and what reached the tables."""

import csv
import io
import re
from datetime import UTC, datetime

import httpx
import pytest
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.slow

INSULT = "shut up, you stupid idiot, nobody wants your edits"


def settled(page: Page) -> None:
    """Wait for the app's script run to end (Streamlit marks it on the app's root)."""
    expect(page.get_by_test_id("stApp")).not_to_have_attribute("data-test-script-state", "running")


def type_into(page: Page, name: str, value: str, commit: str | None = None) -> None:
    """Type into a text box once no script run is in flight (a run that ends after the typing
    redraws the box and drops what was typed), then, when `commit` is given, press it and wait
    for the run it starts to end with the value still there."""
    settled(page)
    box = page.get_by_role("textbox", name=name, exact=True)
    box.fill(value)
    if commit:
        box.press(commit)
        settled(page)
    expect(box).to_have_value(value)


def check(page: Page, text: str) -> None:
    type_into(page, "Comment", text)
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
    settled(page)
    true_labels = page.get_by_role("combobox", name="The true labels")
    true_labels.click()
    true_labels.press_sequentially("insult")
    page.keyboard.press("Enter")
    page.keyboard.press("Escape")
    type_into(page, "Note (optional)", "only an insult")
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


def queue_for_review(api_url: str, texts: list[str]) -> list[str]:
    """Send each text to human review (thresholds of 0 flag toxic and insult); the ids in the
    queue's priority order, the order the page lists them."""
    for text in texts:
        queued = httpx.post(
            f"{api_url}/predict",
            json={"comment_text": text, "thresholds": dict.fromkeys(["toxic", "insult"], 0.0)},
        ).json()
        assert queued["decision"] == "review"
    queue = httpx.get(f"{api_url}/reviews", params={"limit": 100}).json()["items"]
    return [item["request_id"] for item in queue]


def open_queue_as(page: Page, web_url: str, moderator: str) -> None:
    page.goto(web_url)
    page.get_by_role("link", name="Review queue").click()
    expect(page.get_by_role("heading", name="Review queue")).to_be_visible()
    # the name is taken once the page has run again with it: the warning is gone
    type_into(page, "Moderator name", moderator, commit="Enter")
    expect(page.get_by_text("Enter your name in the sidebar")).to_have_count(0)


CURRENT_ITEM_SETTLED = """([requestId, claimed]) => {
    const app = document.querySelector('[data-testid="stApp"]');
    if (!app || app.getAttribute("data-test-script-state") === "running") return false;
    const rows = document.querySelectorAll(`.st-key-review-${requestId}`);
    const cards = document.querySelectorAll(".st-key-review-current");
    return rows.length === 1 && rows[0].innerText.includes("\u25b6")
        && cards.length === 1 && cards[0].innerText.includes(requestId)
        && cards[0].innerText.includes(claimed);
}"""


def expect_current(page: Page, request_id: str) -> None:
    """The item is the highlighted, claimed one, and the page has finished its run (keys
    pressed mid-run would act on the run before). One condition in the page: while a run is
    under way Streamlit can show an element twice (the new one and the stale one it replaces),
    so the row and the card are checked only on a page that is not running, and only once."""
    page.wait_for_function(
        CURRENT_ITEM_SETTLED, arg=[request_id, "Claimed: held by you until"], timeout=30_000
    )


def test_work_one_review_item(local_stack, page, screenshots):
    # GIVEN a comment the API sent to human review, alone in the queue
    clear_review_queue(local_stack.api_url)
    text = "please stop reverting my edits on this page"
    (request_id,) = queue_for_review(local_stack.api_url, [text])
    # WHEN alice opens the queue
    open_queue_as(page, local_stack.web_url, "alice")
    # THEN it is hers: highlighted, claimed in the log, its keys shown on the page
    expect(page.get_by_text("1 pending, by priority")).to_be_visible()
    expect_current(page, request_id)
    expect(page.get_by_text("Keys:")).to_contain_text("J next · K previous")
    (prediction,) = [p for p in local_stack.items("prediction") if p["pk"] == request_id]
    assert prediction["lease_holder"] == "alice"
    approve = page.get_by_role("button", name=re.compile("Approve: fine"))
    expect(approve).to_be_enabled()
    page.screenshot(path=screenshots / "web-review.png", full_page=True)
    # WHEN she approves it (the comment is fine) with the reason "ok"
    approve.click()
    # THEN the page confirms, the item left the queue, and the decision is in the log
    expect(
        page.get_by_text(f"Recorded: approve on {request_id} by alice (reason ok)")
    ).to_be_visible()
    expect(page.get_by_text("The review queue is empty")).to_be_visible()
    decided = [f for f in local_stack.items("feedback") if f["pk"] == request_id]
    assert [(f["source"], f["moderator"], f["true_labels"]) for f in decided] == [
        ("moderator", "alice", [])
    ]
    (prediction,) = [p for p in local_stack.items("prediction") if p["pk"] == request_id]
    assert prediction["review_status"] == "decided"


def test_work_three_items_with_the_keyboard_alone(local_stack, page):
    # GIVEN three comments waiting for review, and alice's queue open
    clear_review_queue(local_stack.api_url)
    texts = [
        "i disagree with this change to the article",
        "could you explain why you removed my section",
        "please discuss on the talk page before reverting",
    ]
    first, second, third = queue_for_review(local_stack.api_url, texts)
    open_queue_as(page, local_stack.web_url, "alice")
    page.evaluate("document.activeElement.blur()")  # keys go to the page, not the name box
    expect_current(page, first)
    keys = page.keyboard
    # WHEN she looks ahead (J) and back (K)  THEN the claim follows the cursor
    keys.press("j")
    expect_current(page, second)
    keys.press("k")
    expect_current(page, first)
    # WHEN she rejects the first (X)  THEN it is recorded and the second is current
    keys.press("x")
    expect(page.get_by_text(f"Recorded: reject on {first} by alice")).to_be_visible()
    expect_current(page, second)
    # WHEN she approves the second (A), then thinks again and undoes it (U)
    keys.press("a")
    expect(page.get_by_text(f"Recorded: approve on {second} by alice")).to_be_visible()
    expect_current(page, third)
    keys.press("u")
    expect(page.get_by_text(f"Undone: {second} is pending again")).to_be_visible()
    expect_current(page, second)
    # WHEN she selects the second and the third (S, J, S) and approves both (Shift+A)
    keys.press("s")
    expect(page.get_by_role("button", name=re.compile(r"Approve selected \(1\)"))).to_be_visible()
    settled(page)
    expect(page.locator(f".st-key-review-{second}").get_by_role("checkbox")).to_be_checked()
    keys.press("j")
    expect_current(page, third)
    keys.press("s")
    expect(page.get_by_role("button", name=re.compile(r"Approve selected \(2\)"))).to_be_enabled()
    settled(page)
    keys.press("Shift+A")
    # THEN the page says so and the queue is empty
    expect(page.get_by_text("Bulk approve: 2 decided.")).to_be_visible()
    expect(page.get_by_text("The review queue is empty")).to_be_visible()
    # AND the log has one decision each, the undone approval withdrawn and taken again
    ids = {first, second, third}
    feedback = {f["pk"]: f for f in local_stack.items("feedback") if f["pk"] in ids}
    assert {rid: (f["moderator"], f["true_labels"] == []) for rid, f in feedback.items()} == {
        first: ("alice", False),
        second: ("alice", True),
        third: ("alice", True),
    }
    predictions = [p for p in local_stack.items("prediction") if p["pk"] in ids]
    assert {p["review_status"] for p in predictions} == {"decided"}
    today = datetime.now(UTC).date().isoformat()
    audit = httpx.get(f"{local_stack.api_url}/reviews/audit.csv", params={"from": today})
    lines = [row for row in csv.DictReader(io.StringIO(audit.text)) if row["request_id"] in ids]
    second_history = [row["action"] for row in lines if row["request_id"] == second]
    assert second_history[-3:] == ["approve", "undo", "approve"]
    assert {row["moderator"] for row in lines} == {"alice"}


def test_edit_a_policy_see_its_forecast_and_save_it(local_stack, page, screenshots):
    # GIVEN logged traffic, two comments of it about durian
    for text in ("durian smells wonderful", "have a lovely day", "more durian please"):
        httpx.post(f"{local_stack.api_url}/predict", json={"comment_text": text})
    admin = {"x-api-key": local_stack.env["ADMIN_API_KEY"]}
    page.goto(local_stack.web_url)
    page.get_by_role("link", name="Policies").click()
    expect(page.get_by_role("heading", name="Policies")).to_be_visible()
    # WHEN an admin of a fruit forum drafts a new policy that blocks "durian"
    # (other tests' policies may be listed first: pick "New policy…")
    page.get_by_role("combobox", name="Policy").click()
    page.get_by_role("option", name="New policy…").click()
    type_into(page, "New policy id", "kids-forum", commit="Enter")
    forecast = page.get_by_role("button", name="Forecast this change")
    expect(forecast).to_be_enabled()
    type_into(page, "Block terms (one a line: always blocked)", "durian", commit="Tab")
    forecast.click()
    # THEN the forecast beside it shows both moving to block, before anything is saved
    expect(page.get_by_text(re.compile(r"Decisions that change: allow->block: 2"))).to_be_visible()
    listed = httpx.get(f"{local_stack.api_url}/policies", headers=admin).json()["items"]
    assert "kids-forum" not in {p["policy_id"] for p in listed}
    page.screenshot(path=screenshots / "web-policies.png", full_page=True)
    # WHEN it is saved  THEN the page confirms and the API serves it
    page.get_by_role("button", name="Save policy").click()
    expect(page.get_by_text("Saved kids-forum version 1.")).to_be_visible()
    saved = httpx.get(f"{local_stack.api_url}/policies/kids-forum", headers=admin).json()
    assert saved["block_terms"] == ["durian"] and saved["version"] == 1
