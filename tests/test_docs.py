"""The documentation stays true to the code."""
import re
from pathlib import Path

from goald import exitcodes

REPO = Path(__file__).resolve().parent.parent
EVENT_CALL = re.compile(r'(?:event|EventLog)\(\s*"([A-Z]+)",\s*"([a-z_.]+)"')


def logged_events():
    found = set()
    for folder in ("goald", "console", "actors"):
        for path in (REPO / folder).rglob("*.py"):
            found |= {name for _, name in EVENT_CALL.findall(path.read_text())}
    return found


def test_every_log_event_in_the_code_is_listed_in_docs_observability():
    doc = (REPO / "docs" / "observability.md").read_text()
    events = logged_events()
    assert events, "the event scanner found nothing: its pattern is out of date"
    missing = sorted(e for e in events if f"`{e}`" not in doc)
    assert not missing, f"add these events to docs/observability.md: {missing}"


def test_every_exit_code_is_documented_in_docs_operations():
    doc = (REPO / "docs" / "operations.md").read_text()
    for code, meaning in exitcodes.DESCRIPTIONS.items():
        assert re.search(rf"^\| `?{code}`? \|", doc, re.M), f"exit code {code} ({meaning}) missing from docs/operations.md"


def test_every_validator_rule_is_documented_in_docs_migrations():
    from goald.migrations.validator import RULES

    doc = (REPO / "docs" / "migrations.md").read_text()
    assert all(rule in doc for rule in RULES)
