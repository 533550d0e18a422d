"""Where the tests find the repository's own files."""

import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
EVENTS = REPO / "events"


def load_event(name: str, request_id: str | None = None) -> dict:
    """A Lambda event from events/ (``REQUEST_ID`` in it replaced when given)."""
    text = (EVENTS / name).read_text()
    if request_id:
        text = text.replace("REQUEST_ID", request_id)
    return json.loads(text)
