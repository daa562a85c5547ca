"""The report in a real browser: headless Chromium renders it, takes a screenshot, and reports what it saw.

Three things are checked:

* the page as written loads without a console error (``--enable-logging=stderr``: Chromium logs every
  console message with its level; an error, an uncaught exception or a failed load would show up there),
  and its screenshot is a non-blank image;
* a probe copy of the page, with a small script prepended to ``<head>`` that records ``console.error``,
  ``window.onerror`` and any ``alert()``, then after ``load`` writes into the DOM which section elements are
  visible (non-zero size, not ``display: none`` / ``visibility: hidden``); ``--dump-dom`` prints that DOM;
* the group named ``<script>alert(1)</script>`` is text in that DOM: no alert, no script element from it.

Skips with the reason when no Chromium is installed (``.ci/run`` installs Debian's ``chromium``).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest

from audit.report import render_document

from report_helpers import EVIL, classification, with_explanations, write_images

SECTIONS = ["summary", "group-tables", "forest-plots", "disparities", "explain", "classifier", "dataset",
            "worst-errors", "methodology", "reproducibility"]
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars",
         "--disable-extensions", "--mute-audio"]

PROBE = """<script>
(function () {
  var seen = {errors: [], alerts: [], visible: {}, evil_text: 0, script_elements: 0};
  var origError = console.error;
  console.error = function () { seen.errors.push(Array.prototype.join.call(arguments, " ")); };
  window.addEventListener("error", function (e) { seen.errors.push("uncaught: " + e.message); });
  window.alert = function (m) { seen.alerts.push(String(m)); };
  window.addEventListener("load", function () {
    SECTIONS.forEach(function (id) {
      var el = document.getElementById(id);
      if (!el) { seen.visible[id] = false; return; }
      var r = el.getBoundingClientRect(), s = getComputedStyle(el);
      seen.visible[id] = r.width > 0 && r.height > 0 && s.display !== "none" && s.visibility !== "hidden";
    });
    seen.svg = document.querySelectorAll("figure svg").length;
    seen.images = Array.prototype.filter.call(document.images, function (i) {
      return i.complete && i.naturalWidth > 0; }).length;
    seen.broken_images = document.images.length - seen.images;
    seen.gs_cells = document.querySelectorAll("table.gs td.cell").length;
    seen.evil_text = Array.prototype.filter.call(document.querySelectorAll("th, td, text, li, h4"), function (e) {
      return e.textContent.indexOf(EVIL) >= 0; }).length;
    seen.script_elements = document.getElementsByTagName("script").length - 1;
    seen.viewport = window.innerWidth;
    seen.scroll_width = document.documentElement.scrollWidth;
    // elements wider than the viewport or sticking out to its right (inside a scroll container is fine)
    seen.too_wide = [];
    Array.prototype.forEach.call(document.querySelectorAll("body *"), function (e) {
      if (e.closest(".scroll") || e.closest("#probe-result") || !e.checkVisibility()) { return; }
      var r = e.getBoundingClientRect();
      if (r.width > 0 && (r.right > window.innerWidth + 0.5 || r.width > window.innerWidth + 0.5)) {
        seen.too_wide.push(e.tagName + "." + e.getAttribute("class") + "#" + e.id + " " + Math.round(r.width));
      }
    });
    seen.too_wide = seen.too_wide.slice(0, 20);
    // every forest-plot point (and interval end) inside its SVG's box
    seen.forest_points = 0; seen.points_outside = [];
    seen.forest_svgs = 0; seen.forest_widths = [];
    Array.prototype.forEach.call(document.querySelectorAll("figure.forest svg"), function (svg) {
      if (!svg.checkVisibility()) { return; }  // the wide plot on a phone, the narrow one on a desktop
      seen.forest_svgs += 1;
      var box = svg.getBoundingClientRect();
      seen.forest_widths.push(Math.round(box.width));
      Array.prototype.forEach.call(svg.querySelectorAll("rect.pt, rect.pt-small, line.ci, text.row-value"), function (p) {
        var r = p.getBoundingClientRect();
        seen.forest_points += 1;
        if (r.left < box.left - 0.5 || r.right > box.right + 0.5 || r.top < box.top - 0.5 || r.bottom > box.bottom + 0.5
            || box.right > window.innerWidth + 0.5) {
          seen.points_outside.push(svg.parentNode.id + " " + p.getAttribute("class"));
        }
      });
    });
    seen.points_outside = seen.points_outside.slice(0, 20);
    var pre = document.createElement("pre");
    pre.id = "probe-result";
    pre.textContent = JSON.stringify(seen);
    document.body.appendChild(pre);
    if (window.parent !== window) { window.parent.document.body.appendChild(window.parent.document.importNode(pre, true)); }
  });
})();
</script>"""


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


CHROMIUM = _chromium()
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="no Chromium on PATH (chromium, chromium-browser or google-chrome); "
                             ".ci/run installs it with `apt-get install -y chromium`")


def _run(args, tmp_path, timeout=120):
    profile = tmp_path / "profile"
    cmd = [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("browser")
    doc, preds, samples = classification(group_names=(EVIL, "male"))
    doc = with_explanations(doc, samples)  # the stratified tables and slices are on the page too
    images = write_images(tmp / "img", preds["sample_id"])
    html = render_document(doc, predictions=preds, samples=samples, image_paths=images)
    path = tmp / "index.html"
    path.write_text(html, encoding="utf-8")
    return tmp, path, html


def test_screenshot_and_no_console_errors(page):
    tmp, path, _ = page
    shot = tmp / "shot.png"
    proc = _run(["--enable-logging=stderr", "--v=0", "--window-size=1280,2400", f"--screenshot={shot}",
                 path.as_uri()], tmp)
    assert shot.is_file() and shot.stat().st_size > 10_000, proc.stderr[-2000:]
    # Chromium logs every console message (as INFO:CONSOLE, whatever its level); the page has no script, so any
    # console message at all (an error, an uncaught exception, a blocked resource) is a failure
    console = [line for line in proc.stderr.splitlines() if "CONSOLE" in line]
    assert not console, console
    assert not re.search(r"net::ERR_|Failed to load resource", proc.stderr), proc.stderr[-2000:]

    from PIL import Image, ImageStat

    with Image.open(shot) as im:
        im = im.convert("RGB")
        assert im.size == (1280, 2400)
        stat = ImageStat.Stat(im.convert("L"))
        assert stat.stddev[0] > 10  # not blank: text, tables and coloured cells
        colours = im.resize((320, 600)).getcolors(maxcolors=1 << 16) or []
        assert len(colours) > 50
        # the sequential blue scale of the groups table is on screen (a significant gap: #9ecae1 or darker)
        assert any(abs(r - rr) < 12 and abs(g - gg) < 12 and abs(b - bb) < 12 for _, (r, g, b) in colours
                   for rr, gg, bb in ((158, 202, 225), (107, 174, 214), (8, 81, 156)))


def _probe(tmp, html, frame=None):
    """Load the page with the probe and return what it saw. ``frame`` = (width, height): inside an iframe of that
    size, since headless Chromium will not make a window narrower than 500 px; the iframe is the page's viewport
    (its media queries, ``innerWidth`` and ``scrollWidth`` are the iframe's)."""
    script = PROBE.replace("SECTIONS", json.dumps(SECTIONS)).replace("EVIL", json.dumps(EVIL).replace("<", "\\u003c"))
    probed = html.replace("<head>", "<head>\n" + script, 1)
    if frame is None:
        probe = tmp / "probe.html"
        probe.write_text(probed, encoding="utf-8")
    else:
        import html as html_lib

        probe = tmp / f"probe-{frame[0]}x{frame[1]}.html"
        probe.write_text(f'<!DOCTYPE html><html><head><meta charset="utf-8"></head><body style="margin:0">'
                         f'<iframe style="width:{frame[0]}px;height:{frame[1]}px;border:0;display:block" '
                         f'srcdoc="{html_lib.escape(probed, quote=True)}"></iframe></body></html>', encoding="utf-8")
    proc = _run(["--window-size=1280,2400", "--dump-dom", "--virtual-time-budget=8000", probe.as_uri()], tmp)
    match = re.search(r'<pre id="probe-result">(.*?)</pre>', proc.stdout, re.S)
    assert match, (proc.stdout[-2000:], proc.stderr[-2000:])
    return json.loads(match.group(1).replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
                      .replace("&quot;", '"'))


def test_phone_width_nothing_wider_than_the_viewport(page):
    """At 390 x 844 (a phone): the page is no wider than the screen, forest plots keep every point inside."""
    tmp, _, html = page
    seen = _probe(tmp, html, (390, 844))
    assert seen["viewport"] == 390, seen["viewport"]
    assert seen["scroll_width"] <= 390, (seen["scroll_width"], seen["too_wide"])
    assert seen["too_wide"] == []
    assert seen["visible"] == {s: True for s in SECTIONS}
    assert seen["forest_points"] > 20 and seen["points_outside"] == [], seen["points_outside"]
    # one forest plot per metric is on screen: the narrow version of each
    assert seen["forest_svgs"] == html.count('<figure class="forest"')
    assert seen["forest_widths"] and all(w <= 360 for w in seen["forest_widths"])
    assert seen["errors"] == [] and seen["alerts"] == []


def test_sections_visible_and_group_name_is_text(page):
    tmp, path, html = page
    seen = _probe(tmp, html)
    assert seen["errors"] == [] and seen["alerts"] == []
    assert seen["visible"] == {s: True for s in SECTIONS}
    assert seen["script_elements"] == 0  # only the probe itself: the group name made no script element
    assert seen["evil_text"] > 10  # ... and it shows as text in tables, legends and captions
    assert seen["svg"] >= 6 and seen["gs_cells"] >= 80
    assert seen["scroll_width"] <= seen["viewport"], seen["too_wide"]
    assert seen["points_outside"] == []
    assert seen["forest_svgs"] == html.count('<figure class="forest"') and all(w > 360 for w in seen["forest_widths"])
    assert seen["images"] >= 8 and seen["broken_images"] == 0
