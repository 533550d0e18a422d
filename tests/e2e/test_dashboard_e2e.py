"""The monitoring dashboard in headless Chromium against the running local stack: seeded
traffic goes through the API, the stream runner and the aggregator, and the page shows it."""

import httpx
import pytest
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.slow

SECTIONS = ("overview", "traffic", "latency", "drift", "accuracy", "queue")


def metric_value(page: Page, label: str):  # noqa: ANN201 - a Playwright locator
    card = page.locator('[data-testid="stMetric"]').filter(has=page.get_by_text(label, exact=True))
    return card.locator('[data-testid="stMetricValue"]')


def test_dashboard_shows_the_seeded_traffic(local_stack, page, screenshots):
    # GIVEN real comments, feedback and review decisions sent through the API and counted
    local_stack.seed(80)
    predictions = len(local_stack.items("prediction"))
    assert predictions >= 80
    # WHEN the monitoring team opens the dashboard (last day, all versions)
    page.goto(local_stack.dashboard_url)
    expect(page.get_by_role("heading", name="Traffic")).to_be_visible()
    # THEN the request count is the number of predictions in the log
    expect(metric_value(page, "Requests")).to_have_text(f"{predictions:,}")
    # ... the served model is listed with its bundle reference, and drift is measured
    expect(page.get_by_role("heading", name="Target drift")).to_be_visible()
    expect(page.get_by_text("No bundle reference")).to_have_count(0)
    expect(page.get_by_text("no data in this range", exact=True)).to_have_count(0)
    plots = page.locator(".js-plotly-plot")
    expect(plots).to_have_count(8)
    page.screenshot(path=screenshots / "dashboard-overview.png")
    # a viewport as tall as the page: Streamlit scrolls inside the page, and draws charts
    # only once they are in view
    page.set_viewport_size({"width": 1400, "height": 7000})
    expect(plots.last).to_be_in_viewport()
    for name in SECTIONS[1:]:
        page.locator(f".st-key-section-{name}").screenshot(
            path=screenshots / f"dashboard-{name}.png"
        )
    page.screenshot(path=screenshots / "dashboard-page.png")
    page.set_viewport_size({"width": 1400, "height": 1000})

    # WHEN the served version is picked in the filter
    served = httpx.get(f"{local_stack.api_url}/health").json()["model_version"]
    page.get_by_test_id("stSidebar").get_by_role("combobox").first.click()
    page.get_by_role("option", name=served, exact=True).click()
    # THEN the page is that version's, with the same traffic (it served everything)
    expect(page.get_by_text(f"· {served} ·", exact=False)).to_be_visible()
    expect(metric_value(page, "Requests")).to_have_text(f"{predictions:,}")
