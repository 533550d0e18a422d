"""Rebuild identity_bias.csv from identity_templates.csv and identity_terms.csv.

Every template is filled with every identity term, giving the rows that the Jigsaw
Unintended-Bias metrics (subgroup AUC, BPSN AUC, BNSP AUC) need per identity. Templates use
two slots: ``{identity_adj}`` (the adjective, "Muslim") and ``{identity_plural}`` (the plural
noun phrase, "Muslims"). The output is deterministic: template order, then term order.

    python training/suites/build_identity_bias.py
"""

import csv
import string
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "identity_templates.csv"
TERMS = HERE / "identity_terms.csv"
OUTPUT = HERE / "identity_bias.csv"
SLOTS = {"identity_adj", "identity_plural"}


def _read(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _check_template(template: str) -> None:
    fields = {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
    if not fields or not fields <= SLOTS:
        raise ValueError(f"template needs only {sorted(SLOTS)} slots: {template!r}")


def build_rows(templates: list[dict[str, str]], terms: list[dict[str, str]]) -> list[list[str]]:
    """One row per (template, term): id, identity, text, toxic."""
    rows: list[list[str]] = []
    counters = {"0": 0, "1": 0}
    for template in templates:
        text, toxic = template["template"], template["toxic"]
        if toxic not in counters:
            raise ValueError(f"toxic must be 0 or 1: {template!r}")
        _check_template(text)
        counters[toxic] += 1
        kind = "tox" if toxic == "1" else "ok"
        for term in terms:
            filled = text.format(identity_adj=term["adjective"], identity_plural=term["plural"])
            filled = filled[0].upper() + filled[1:]
            row_id = f"bias_{kind}{counters[toxic]:02d}_{term['identity']}"
            rows.append([row_id, term["identity"], filled, toxic])
    return rows


def main() -> int:
    rows = build_rows(_read(TEMPLATES), _read(TERMS))
    with OUTPUT.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["id", "identity", "text", "toxic"])
        writer.writerows(rows)
    sys.stdout.write(f"wrote {len(rows)} rows to {OUTPUT}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
