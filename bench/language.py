"""Language identification (``make bench-language``) -> bench/results/language.json.

How the confidence floor ``moderation.language.MIN_CONFIDENCE`` was chosen, on validation
data only: at each candidate floor, the share of English validation comments (the Jigsaw
validation split and the extra sources' validation rows, DATA_DIR) taken for another
language, and the share of the hand-written comments in eight other languages
(training/suites/languages.csv) that are caught. Also the identifier's load time in a fresh
process and its time per comment.
"""

import inspect
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from bench.common import percentiles_ms, write_results
from moderation.language import MIN_CONFIDENCE, MIN_WORDS, SUPPORTED_LANGUAGES, UNDETERMINED
from moderation.model.language_id import detect_language
from moderation.settings import get_settings
from training.data import (
    default_extra_dir,
    group_split,
    load_extra,
    load_train,
    stratified_split,
)
from training.train import train

LANGUAGES_FILE = Path(__file__).resolve().parents[1] / "training" / "suites" / "languages.csv"
FLOORS = (0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95)

LOAD_SNIPPET = """
import json, time
t0 = time.perf_counter()
from moderation.model.language_id import detect_language
detect_language("hello there")
print(json.dumps({"load_and_first_s": time.perf_counter() - t0}))
"""


def english_validation() -> list[str]:
    """The comments as sent (not normalised) of training's validation split."""
    defaults = inspect.signature(train).parameters
    fraction, seed = defaults["validation_fraction"].default, defaults["seed"].default
    data_dir = get_settings().data_dir
    frame = load_train(data_dir).frame
    _, validation = stratified_split(frame, fraction, seed)
    texts = frame["comment_text"].iloc[validation].tolist()
    extra_dir = default_extra_dir(data_dir)
    extra = load_extra(extra_dir) if extra_dir is not None else None
    if extra is not None:
        rows = extra.frame[group_split(extra.frame["group"], fraction, seed)]
        texts += rows["comment_text"].tolist()
    return texts


def other_language_rate(detected, floor: float) -> float:
    return float(
        np.mean(
            [
                d.code not in (*SUPPORTED_LANGUAGES, UNDETERMINED) and d.confidence >= floor
                for d in detected
            ]
        )
    )


def main() -> None:
    english = english_validation()
    others = pd.read_csv(LANGUAGES_FILE)
    started = time.perf_counter()
    detected_english = [detect_language(text) for text in english]
    per_comment = (time.perf_counter() - started) / len(english)
    detected_others = [detect_language(text) for text in others["text"]]
    right_language = np.mean(
        [d.code == code for d, code in zip(detected_others, others["language"], strict=True)]
    )
    by_floor = {
        f"{floor:.2f}": {
            "english_taken_for_other": round(other_language_rate(detected_english, floor), 4),
            "other_languages_caught": round(other_language_rate(detected_others, floor), 4),
        }
        for floor in FLOORS
    }
    missed = [
        {"language": code, "text": text, "detected": d.code, "confidence": round(d.confidence, 3)}
        for d, code, text in zip(detected_others, others["language"], others["text"], strict=True)
        if d.supported
    ]
    single = []
    for text in english[:2000]:
        t0 = time.perf_counter()
        detect_language(text)
        single.append(time.perf_counter() - t0)
    load = json.loads(
        subprocess.run(
            [sys.executable, "-c", LOAD_SNIPPET], check=True, capture_output=True, text=True
        ).stdout
    )
    write_results(
        "language",
        {
            "english_validation_comments": len(english),
            "other_language_comments": len(others),
            "min_confidence": MIN_CONFIDENCE,
            "min_words": MIN_WORDS,
            "by_floor": by_floor,
            "other_languages_right_code": round(float(right_language), 4),
            "other_languages_missed_at_min_confidence": missed,
            "mean_ms_per_comment": round(per_comment * 1000, 4),
            "single_comment_ms": percentiles_ms(single),
            "fresh_process_import_load_first_s": round(load["load_and_first_s"], 3),
        },
    )


if __name__ == "__main__":
    main()
