"""Severities and statuses are words, never glyphs: a machine without an emoji font (a server, many
Linux desktops) draws an emoji as an empty box, and the Anomalies page's severity markers were
emoji. Checked in the source (every string a module can put on screen) and on the rendered pages.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from google.protobuf import text_format

from dashboard import fmt, ui
from tests.dashboard import seed
from tests.dashboard.conftest import SeededCollector
from tests.dashboard.glyphs import pictographs
from tests.dashboard.test_pages import frames, open_page

ROOT = Path(__file__).resolve().parents[2]
# The dashboard's own text, and the text the collector and the analytics hand it to show (alert
# messages and rule names, anomaly reasons, API errors).
PACKAGES = ("dashboard", "analytics", "collector")


def _strings(source: str) -> Iterator[tuple[int, str]]:
    """(line, value) of every string literal a module could show (f-string parts too); docstrings
    are never shown and are left out."""
    tree = ast.parse(source)
    docstrings = {
        id(node.body[0].value) for node in ast.walk(tree)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
        and node.body and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)
    }
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            yield node.lineno, node.value


def _found(path: Path) -> list[str]:
    text = path.read_text(encoding="utf-8")
    pieces = _strings(text) if path.suffix == ".py" else enumerate(text.splitlines(), start=1)
    return [f"{path.relative_to(ROOT)}:{line}: {' '.join(sorted(pictographs(value)))}"
            for line, value in pieces if pictographs(value)]


def test_the_source_check_finds_emoji_escapes_and_dingbats_but_not_docstrings() -> None:
    source = '"""A 🔴 docstring is never shown."""\nSEVERITY = {"critical": "\\U0001F534"}\n' \
             'def f(ok):\n    """Neither is ✓ this one."""\n    return f"{\'✓\' if ok else \'x\'} done · →"\n'
    assert [(line, "".join(pictographs(v))) for line, v in _strings(source) if pictographs(v)] == [
        (2, "\U0001F534"), (5, "✓")]


def test_no_module_shows_an_emoji_or_symbol_glyph() -> None:
    files = [p for package in PACKAGES for p in sorted((ROOT / package).rglob("*"))
             if p.suffix in (".py", ".toml", ".sql") and "__pycache__" not in p.parts]
    assert len(files) > 50
    found = [hit for path in files for hit in _found(path)]
    assert not found, "glyphs that need an emoji font:\n" + "\n".join(found)


def test_severities_are_the_rules_words_sorted_most_severe_first() -> None:
    rules = pytest.importorskip("analytics.rules")
    assert fmt.SEVERITIES == tuple(reversed(rules.SEVERITIES))
    alerts = pd.DataFrame({"severity": ["info", "paging", "critical", "warning", "error", "critical"],
                           "rule": list("abcdef")})
    ordered = alerts.sort_values("severity", key=fmt.severity_rank, kind="stable")
    assert list(ordered["severity"]) == ["critical", "critical", "error", "warning", "info", "paging"]
    assert list(ordered["rule"][:2]) == ["c", "f"]  # within a severity the order stays (newest first)


def test_level_cells_keep_their_word_and_take_their_colour_from_the_cell_style() -> None:
    words = [*fmt.SEVERITIES, "ok"]
    frame = pd.DataFrame({"severity": words, "status": list(reversed(words)), "rule": words})
    styled = ui.styled(frame)
    assert list(styled.data["severity"]) == words and list(styled.data["rule"]) == words  # type: ignore[union-attr]
    html = styled.to_html()  # type: ignore[union-attr]
    styles = {fmt.level_css(w) for w in words}
    assert len(styles) == len(words) and "" not in styles  # one distinct style per word
    for style in styles:
        assert style.split(";")[0].strip() in html
    assert fmt.level_css("firing") == ""  # any other word stays plain
    # Streamlit draws the Styler's text in text cells and in number cells without a format: it reads
    # as without a Styler (not pandas' 4.000000, nan or None).
    plain = pd.DataFrame({"status": ["ok", "error", "ok"], "value": [4.0, 0.73214567, None],
                          "session": ["s1", None, "s2"]})
    assert ui.styled(plain).to_string(delimiter="|").splitlines()[1:] == [  # type: ignore[union-attr]
        "0|ok|4|s1", "1|error|0.7321|–", "2|ok|–|s2"]
    assert isinstance(ui.styled(frame[["rule"]]), pd.DataFrame)  # no level column: the frame as it is
    assert fmt.badge("error") == ":red-badge[error]" and fmt.badge("ok") == ":green-badge[ok]"


def _shown(at: object) -> list[str]:
    """Every text a rendered page holds: each element's fields (markdown, labels, chart specs) and
    each table's cells and column names."""
    texts: list[str] = []
    for root in (at.main, at.sidebar):  # type: ignore[attr-defined]
        for node in root:
            if node.type == "dataframe":
                frame = node.value
                texts += [str(c) for c in frame.columns]
                texts += [str(v) for column in frame.columns for v in frame[column]]
            proto = getattr(node, "proto", None)
            if proto is not None:
                texts.append(text_format.MessageToString(proto, as_utf8=True))
    return texts


PAGES = {
    "overview": None, "traces": None, "trace": {"trace_id": "refund_failed"},
    "sessions": {"session": seed.SESSION}, "agents": None, "costs": None, "anomalies": None, "sql": None,
}


@pytest.mark.parametrize("page", list(PAGES))
def test_no_page_shows_an_emoji_or_symbol_glyph(api: SeededCollector, page: str) -> None:
    params = {k: api.seeded.traces.get(v, v) for k, v in (PAGES[page] or {}).items()}
    at = open_page(page, params=params)
    shown = _shown(at)
    assert len(shown) > 5
    found = {c for text in shown for c in pictographs(text)}
    assert not found, f"{page} shows {found}"


def test_anomalies_lists_every_severity_as_a_word_most_severe_first(alerting_collector: SeededCollector,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    most_severe_first = list(reversed(pytest.importorskip("analytics.rules").SEVERITIES))
    monkeypatch.setenv("TRACEHOUSE_API_URL", alerting_collector.http_url)
    at = open_page("anomalies")
    stored = sorted(s for (s,) in alerting_collector.sql("SELECT severity FROM alerts"))
    assert set(stored) == set(most_severe_first)  # the seeded rules fired one alert of each severity
    shown = list(frames(at)[0]["severity"])
    assert sorted(shown) == stored  # the stored words, nothing added to them
    assert shown == sorted(shown, key=most_severe_first.index)
    assert not {c for text in _shown(at) for c in pictographs(text)}
