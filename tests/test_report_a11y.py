"""Accessibility from the page's own palette: every text/background pair it can show reaches WCAG AA contrast.

The CSS is parsed out of the rendered page (so a colour changed in the template is what gets checked), the
custom properties of ``:root`` are resolved, and each rule that sets a text colour (``color``, or ``fill`` for
SVG text) is checked against the background it declares, else the page's white; the pairs that meet only
through nesting (a flag in a significant row, a small group's row in a significant row, text in each shade
of the groups table) are listed by hand. WCAG 2.2: 4.5:1 for text, 3:1 for large text (>= 24 px, or bold
>= 18.66 px). Navigation targets must be at least 24 px high (WCAG 2.5.8).
"""

from __future__ import annotations

import re

import pytest

from audit.report import render_document

from report_helpers import classification

# (selector of the text, selector of the background): pairs that come from nesting
NESTED = [(".flag", "tr.sig td"), ("tr.small td", "tr.sig td"), ("body", "th"), ("body", "pre"),
          ("nav a", "nav"), (".smallmark", "body"), ("body", "table.disp td:first-child")]


def _luminance(hex_colour: str) -> float:
    h = hex_colour.lstrip("#")
    if len(h) == 3:
        h = "".join(c * 2 for c in h)
    rgb = [int(h[i:i + 2], 16) / 255 for i in (0, 2, 4)]
    lin = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in rgb]
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]


def contrast(a: str, b: str) -> float:
    la, lb = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def _rules(html: str) -> dict:
    css = re.search(r"<style>(.*?)</style>", html, re.S).group(1)
    css = re.sub(r"@media[^{]*\{((?:[^{}]*\{[^}]*\})*)\s*\}", r"\1", css)  # media blocks: their rules count too
    rules = {}
    for selectors, body in re.findall(r"([^{}]+)\{([^}]*)\}", css):
        props = dict((k.strip(), v.strip()) for k, v in
                     (p.split(":", 1) for p in body.split(";") if ":" in p))
        for sel in selectors.split(","):
            rules.setdefault(" ".join(sel.split()), {}).update(props)
    variables = {k: v for k, v in rules.get(":root", {}).items() if k.startswith("--")}

    def resolve(v):
        m = re.fullmatch(r"var\((--[\w-]+)\)", v)
        return variables[m.group(1)] if m else v
    return {sel: {k: resolve(v) for k, v in props.items()} for sel, props in rules.items()}


def _colour(value: str | None) -> str | None:
    m = re.search(r"#[0-9a-fA-F]{6}\b|#[0-9a-fA-F]{3}\b", value or "")
    return m.group(0) if m else None


@pytest.fixture(scope="module")
def page():
    doc, preds, samples = classification()
    return render_document(doc, predictions=preds, samples=samples, thumbnails=False)


def _pairs(rules: dict):
    ink, paper = _colour(rules["body"].get("color")), _colour(rules["body"].get("background")) or "#ffffff"
    for sel, props in rules.items():
        text = _colour(props.get("color")) or (_colour(props.get("fill")) if sel.startswith("svg") else None)
        back = _colour(props.get("background"))
        if text is None and back is None or sel == ":root" or "svg" in sel and text is None:
            continue
        if sel.startswith("svg") and sel.split()[-1] in (".frame", ".grid", ".axis", ".diag", ".ci", ".pt",
                                                          ".pt-small", ".ref-overall", ".ref-reference"):
            continue  # lines and marks, not text
        yield sel, text or ink, back or paper
    for fg_sel, bg_sel in NESTED:
        fg = _colour(rules[fg_sel].get("color")) or ink
        bg = _colour(rules[bg_sel].get("background")) or paper
        yield f"{fg_sel} on {bg_sel}", fg, bg


def test_every_text_background_pair_meets_aa(page):
    rules = _rules(page)
    pairs = list(_pairs(rules))
    # the shades of the groups table are all there, and checked with the text they carry: each declares its
    # text colour, since the legend puts them inside a .note, whose grey would otherwise be inherited
    assert {f".s{i}" for i in range(5)} <= {sel for sel, _, _ in pairs}
    assert all(_colour(rules[f".s{i}"].get("color")) for i in range(5))
    low = [(sel, fg, bg, round(contrast(fg, bg), 2)) for sel, fg, bg in pairs if contrast(fg, bg) < 4.5]
    assert low == [], low
    assert len(pairs) > 20


def test_the_contrast_check_can_fail(page):
    """The issue's failing pair: white on #4292c6 is 3.4:1."""
    assert round(contrast("#ffffff", "#4292c6"), 1) == 3.4
    bad = page.replace(".s3 { background: #6baed6; color: var(--ink); }", ".s3 { background: #4292c6; color: #fff; }")
    low = [sel for sel, fg, bg in _pairs(_rules(bad)) if contrast(fg, bg) < 4.5]
    assert low == [".s3"]


def test_navigation_targets_at_least_24px(page):
    rules = _rules(page)
    nav = rules["nav a"]
    assert nav.get("min-height") == "24px" and nav.get("line-height") == "24px" and nav.get("min-width") == "24px"
    assert re.search(r'<nav aria-label="Sections">', page)
    # scrolling boxes can be reached with the keyboard (axe: scrollable-region-focusable)
    assert page.count('<div class="scroll"') == page.count('<div class="scroll" tabindex="0" role="region"')
