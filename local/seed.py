"""Seed traffic for the local stack (``make seed-traffic``): real comments through the API,
with feedback and review decisions carrying the dataset's true labels."""

import logging

import httpx
import numpy as np

from moderation.errors import DataError
from moderation.labels import LABELS
from moderation.settings import get_settings
from training.data import SAMPLE_DIR, load_test

logger = logging.getLogger("local.seed")


def seed(
    count: int,
    feedback_share: float,
    repeat_share: float,
    review_share: float,
    api: str,
    seed_value: int,
) -> dict[str, int]:
    """Send real comments from DATA_DIR through the API, with feedback and review decisions
    carrying the dataset's true labels, so the aggregates and the dashboard have data."""
    data_dir = get_settings().data_dir
    loaded = load_test(data_dir)
    if loaded is None:
        logger.warning("seed: no test set in %s; sending the committed sample's", data_dir)
        loaded = load_test(SAMPLE_DIR)
    if loaded is None:
        raise DataError(f"no test set in {data_dir} or {SAMPLE_DIR}")
    frame = loaded[0]
    frame = frame[frame["comment_text"].str.strip().str.len().between(1, 10_000)]
    rng = np.random.default_rng(seed_value)
    rows = frame.iloc[rng.choice(len(frame), size=min(count, len(frame)), replace=False)]
    truth = {
        row.comment_text: [name for name in LABELS if getattr(row, name) == 1]
        for row in rows.itertuples()
    }
    texts = list(truth)
    sent = [texts[i] if rng.random() > repeat_share or i == 0 else texts[rng.integers(0, i)]
            for i in range(len(texts))]  # fmt: skip
    stats = {"predictions": 0, "feedback": 0, "reviews": 0, "errors": 0}
    with httpx.Client(base_url=api, timeout=30, headers={"x-api-key": "seed-traffic"}) as client:
        position = 0
        while position < len(sent):
            size = 1 if rng.random() < 0.7 else int(rng.integers(2, 20))
            chunk = sent[position : position + size]
            position += size
            if len(chunk) == 1:
                response = client.post("/predict", json={"comment_text": chunk[0]})
                results = [response.json()] if response.status_code == 200 else []
            else:
                response = client.post("/predict/batch", json={"comments": chunk})
                results = response.json()["results"] if response.status_code == 200 else []
            if response.status_code != 200:
                stats["errors"] += 1
                continue
            stats["predictions"] += len(results)
            for text, result in zip(chunk, results, strict=True):
                if result["decision"] != "review" and rng.random() < feedback_share:
                    labels = truth[text]
                    client.post(
                        "/feedback",
                        json={
                            "request_id": result["request_id"],
                            "correct": sorted(labels) == sorted(result["labels"]),
                            "true_labels": labels,
                        },
                    )
                    stats["feedback"] += 1
        pending = client.get("/reviews", params={"limit": 100}).json()["items"]
        for item in pending[: int(len(pending) * review_share)]:
            labels = truth.get(item["comment_text"] or "", [])
            action = (
                {"action": "relabel", "true_labels": labels} if labels else {"action": "approve"}
            )
            client.post(f"/reviews/{item['request_id']}", json={**action, "moderator": "seed-bot"})
            stats["reviews"] += 1
    logger.info("seed: %s", ", ".join(f"{v} {k}" for k, v in stats.items()))
    return stats
