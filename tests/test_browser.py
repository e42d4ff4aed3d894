"""The built book as a reader's browser shows it (run by `make test` after the ci build).

Every HTML page of ``_build/html`` is opened in headless Chromium, driven by selenium through
Debian's ``chromedriver``, from a local HTTP server on 127.0.0.1; every other host fails to
resolve, so nothing is fetched from the network.  A page fails on a JavaScript console error, an
image that did not load, an internal link (page or ``#fragment``) that does not resolve, TeX
left in the visible text after MathJax has typeset, a displayed formula or table wider than the
text column, or — at the desktop's width and at a tablet's and a phone's — printed output (a code
cell's lines), a table or a formula that neither fits its box nor scrolls inside it, or a document
wider than the window.  A full-page screenshot of each page is saved under
``_build/screenshots/<page>.png``.

The browser is part of the test, not optional: without chromium or chromedriver the test fails
and says that ``make setup`` installs them.
"""

from __future__ import annotations

import functools
import html.parser
import re
import threading
import time
import urllib.parse
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from instab import book

pytestmark = pytest.mark.book

HTML = book.build_root() / "html"
SHOTS = book.build_root() / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
#: Window width of the pages and their screenshots (a desktop: the text column at its widest, 91
#: columns of code); the height follows the page, up to :data:`MAX_HEIGHT`.
WIDTH = 1440
MAX_HEIGHT = 32000
#: Seconds a page may take to load, typeset its formulas and load its images.
PAGE_TIMEOUT = 60
#: Folders of the build that hold assets, not pages.
ASSET_DIRS = {"_static", "_sources", "_images", "_downloads"}
#: TeX a reader must never see: delimiters MathJax should have consumed, or a control word
#: (``\frac``, ``\alpha``, ``\tag``: prose outside code has no backslash before a letter).
RAW_TEX = re.compile(r"\\[()\[\]]|\$\$|\\[A-Za-z]+")


def toc_pages() -> list[str]:
    """The pages the table of contents names, as paths under ``_build/html`` (``book/heat.html``)."""
    return [f"{f}.html" for f in book.toc_files()]


def built_pages() -> list[str]:
    """Every HTML page of the build (the toc's pages, the index, genindex, search), relative paths."""
    if not HTML.is_dir():
        return []
    return sorted(p.relative_to(HTML).as_posix() for p in HTML.rglob("*.html")
                  if not ASSET_DIRS & set(p.relative_to(HTML).parts))


PAGES = sorted(set(toc_pages()) | set(built_pages()))


class _QuietHandler(SimpleHTTPRequestHandler):
    """Serves ``_build/html`` without logging every request."""

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base class's name)
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    """``http://127.0.0.1:<port>``, serving ``_build/html`` from a thread."""
    handler = functools.partial(_QuietHandler, directory=str(HTML))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory, server: str) -> Iterator[Any]:
    """Headless Chromium through Debian's chromedriver, with a fresh profile and no network."""
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not Path(p).exists()]
    if missing:
        pytest.fail(f"{', '.join(missing)} not found: the browser test needs Debian's chromium and "
                    f"chromium-driver; `make setup` installs them (apt-get install chromium chromium-driver)")
    import os

    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    os.environ["SE_OFFLINE"] = "true"  # selenium-manager, should anything call it, downloads nothing
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", "--hide-scrollbars", f"--window-size={WIDTH},1000",
                f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
                # every host but the local server fails to resolve: nothing loads from the network
                "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=opts)
    driver.set_page_load_timeout(PAGE_TIMEOUT)
    driver.set_script_timeout(PAGE_TIMEOUT)
    try:
        yield driver
    finally:
        driver.quit()


class _Ids(html.parser.HTMLParser):
    """Collects the ``id`` and ``name`` attributes of a page (the targets of ``#fragment`` links)."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for key, value in attrs:
            if key in ("id", "name") and value:
                self.ids.add(value)


@functools.cache
def page_ids(path: Path) -> frozenset[str]:
    """The ids a page defines."""
    parser = _Ids()
    parser.feed(path.read_text(errors="replace"))
    return frozenset(parser.ids)


def local_target(url: str, origin: str, root: Path = HTML) -> tuple[Path, str] | None:
    """The file under ``root`` (served at ``origin``) and the fragment that ``url`` points at
    (``None`` for a link elsewhere)."""
    if not url.startswith(origin + "/"):
        return None
    parts = urllib.parse.urlsplit(url)
    path = root / urllib.parse.unquote(parts.path).lstrip("/")
    if path.is_dir():
        path = path / "index.html"
    return path, urllib.parse.unquote(parts.fragment)


def broken_links(links: list[str], origin: str, root: Path = HTML) -> list[str]:
    """The links among ``links`` (absolute URLs) to a file under ``root`` that does not exist or
    to a fragment that its page does not define."""
    bad = []
    for url in sorted(set(links)):
        target = local_target(url, origin, root)
        if target is None:
            continue
        path, fragment = target
        if not path.is_file():
            bad.append(f"{url}: no file {path.relative_to(root)}")
        elif fragment and path.suffix == ".html" and fragment not in page_ids(path):
            bad.append(f"{url}: no id {fragment!r} in {path.relative_to(root)}")
    return bad


def raw_tex(text: str) -> list[str]:
    """Snippets of ``text`` around TeX a reader should not see."""
    return [text[max(0, m.start() - 40):m.end() + 40].replace("\n", " ") for m in RAW_TEX.finditer(text)]


WAIT_FOR_MATHJAX = """
const done = arguments[arguments.length - 1];
const mj = window.MathJax;
if (!mj) { done("no MathJax on this page"); return; }
if (!mj.startup || !mj.startup.promise) { done("MathJax did not start"); return; }
mj.startup.promise.then(() => done("typeset"), (e) => done("MathJax failed: " + e));
"""

PAGE_HEIGHT = "return Math.max(document.documentElement.scrollHeight, document.body.scrollHeight);"
#: The window's height beyond the page's viewport (what a screenshot does not show).
WINDOW_CHROME = "return Math.max(0, window.outerHeight - window.innerHeight);"

IMAGES_PENDING = "return Array.from(document.images).filter(i => !i.complete).length;"

BROKEN_IMAGES = """
return Array.from(document.images)
  .filter(i => !(i.complete && i.naturalWidth > 0))
  .map(i => i.getAttribute('src'));
"""

LINKS = "return Array.from(document.querySelectorAll('a[href]')).map(a => a.href);"

# The visible text outside code (cells' source and outputs, inline code): hide code, read, restore.
VISIBLE_PROSE = """
const code = Array.from(document.querySelectorAll('pre, code, .highlight, .cell_output'));
const saved = code.map(e => e.style.display);
code.forEach(e => { e.style.display = 'none'; });
const text = document.body.innerText;
code.forEach((e, i) => { e.style.display = saved[i]; });
return text;
"""

RESOURCES = "return performance.getEntriesByType('resource').map(r => r.name);"

# Formulas MathJax could not typeset: it shows its error message in their place.
MATHJAX_ERRORS = """
return Array.from(document.querySelectorAll('mjx-merror'))
  .map(e => (e.getAttribute('data-mjx-error') || e.textContent).slice(0, 120));
"""

# Displayed formulas and tables wider than the text column: the reader sees them cut off.
TOO_WIDE = """
const wide = e => e.scrollWidth > e.clientWidth + 1
  || e.getBoundingClientRect().width > e.parentElement.clientWidth + 1;
return Array.from(document.querySelectorAll('mjx-container[display="true"], article table'))
  .filter(e => e.offsetParent !== null && wide(e))
  .map(e => e.tagName.toLowerCase() + ': ' + e.textContent.replace(/\\s+/g, ' ').trim().slice(0, 80));
"""

# The page wider than the window: the reader scrolls the whole page sideways.
DOCUMENT_WIDER = """
const d = document.documentElement;
return d.scrollWidth > d.clientWidth + 1 ? d.scrollWidth + ' px in a window of ' + d.clientWidth + ' px' : '';
"""

# Wide content not kept inside its own box: printed output (a code cell's source or output, any
# preformatted block), a table or a displayed formula whose box (itself, or the container it scrolls
# in) reaches past the text column, or is wider than its box without scrolling in it — the reader
# cannot see the line's end, or the page scrolls sideways as a whole.
NOT_IN_ITS_BOX = """
const article = document.querySelector('article') || document.body;
const right = article.getBoundingClientRect().right + 1;
const scrolls = e => ['auto', 'scroll'].includes(getComputedStyle(e).overflowX);
const box = e => scrolls(e) ? e : (e.parentElement && scrolls(e.parentElement) ? e.parentElement : e);
return Array.from(article.querySelectorAll('pre, table, mjx-container[display="true"]'))
  .filter(e => e.offsetParent !== null || e.tagName === 'MJX-CONTAINER')
  .filter(e => { const b = box(e);
                 return b.getBoundingClientRect().right > right
                   || (b.scrollWidth > b.clientWidth + 1 && !scrolls(b)); })
  .map(e => e.tagName.toLowerCase() + ': ' + e.textContent.replace(/\\s+/g, ' ').trim().slice(0, 80));
"""
#: Narrower windows (a tablet, a phone) at which wide content must stay inside its own box and the
#: page must not widen (at :data:`WIDTH` formulas and tables must also fit the column).
NARROW_WIDTHS = (768, 400)


def shot_name(page: str) -> str:
    """``book/heat.html`` -> ``heat.png``; pages outside ``book/`` keep their folder in the name."""
    rel = page.removeprefix("book/").removesuffix(".html")
    return rel.replace("/", "__") + ".png"


def test_every_page_of_the_toc_was_built() -> None:
    missing = [p for p in toc_pages() if not (HTML / p).is_file()]
    assert not missing, f"pages of _toc.yml not in {HTML}: {missing} (build the book first)"


def test_the_checks_catch_what_they_look_for(tmp_path: Path) -> None:
    assert raw_tex(r"the bound \(\alpha < 2\) holds") and raw_tex("a $$x$$ b") and raw_tex(r"\frac{1}{2}")
    assert raw_tex(r"σ ← F(σ). \tag not allowed in split environment")
    assert not raw_tex("α < 2/Δt, costs $5, a/b path, 2^-23")
    (tmp_path / "book").mkdir()
    (tmp_path / "book" / "a.html").write_text('<h1 id="top">A</h1><span name="x"></span>')
    origin = "http://127.0.0.1:1"
    good = [f"{origin}/book/a.html", f"{origin}/book/a.html#top", f"{origin}/book/a.html#x",
            "https://example.org/b.html#nowhere"]
    assert broken_links(good, origin, tmp_path) == []
    bad = broken_links([f"{origin}/book/b.html", f"{origin}/book/a.html#nowhere"], origin, tmp_path)
    assert len(bad) == 2 and any("no file book/b.html" in b for b in bad)
    assert any("no id 'nowhere' in book/a.html" in b for b in bad)


def test_the_width_checks_catch_a_page_widened_by_its_output(browser: Any) -> None:
    """A printed line that overflows its box (no scrolling) widens the page and is named; the same
    line in a box that scrolls (the book's style sheet) is not."""
    import base64

    line = "claim " + "x" * 400

    def load(style: str) -> None:
        page = (f"<html><body style='margin:0'><article style='width:300px'><pre style='{style}'>{line}</pre>"
                f"</article></body></html>")
        browser.get("data:text/html;base64," + base64.b64encode(page.encode()).decode())

    browser.set_window_size(NARROW_WIDTHS[-1], 600)
    load("overflow-x: visible")
    assert browser.execute_script(DOCUMENT_WIDER), "a page widened by a printed line was not caught"
    assert [w for w in browser.execute_script(NOT_IN_ITS_BOX) if w.startswith("pre: claim")]
    load("overflow-x: auto; max-width: 100%")
    assert browser.execute_script(DOCUMENT_WIDER) == "" and browser.execute_script(NOT_IN_ITS_BOX) == []


@pytest.mark.parametrize("page", PAGES)
def test_page_in_the_browser(page: str, browser: Any, server: str) -> None:
    """Load ``page``; no console error, every image loaded, every internal link resolves, every
    formula typeset (no MathJax error, no raw TeX in the visible text), no formula or table cut
    off; save its full-page screenshot."""
    assert (HTML / page).is_file(), f"{page} was not built"
    browser.get_log("browser")  # drop what earlier pages logged
    browser.set_window_size(WIDTH, 1000)
    browser.get(f"{server}/{page}")
    url = browser.current_url
    mathjax = browser.execute_async_script(WAIT_FOR_MATHJAX)
    # the window as tall as the page, so that every (lazy) image is in view and the shot is whole
    chrome = int(browser.execute_script(WINDOW_CHROME))
    height = 0
    for _ in range(3):  # the layout may change with the window's height: measure again
        new = min(int(browser.execute_script(PAGE_HEIGHT)), MAX_HEIGHT)
        if new == height:
            break
        height = new
        browser.set_window_size(WIDTH, height + chrome)
        time.sleep(0.3)
    deadline = time.monotonic() + PAGE_TIMEOUT
    while browser.execute_script(IMAGES_PENDING) and time.monotonic() < deadline:
        time.sleep(0.2)
    SHOTS.mkdir(parents=True, exist_ok=True)
    assert browser.save_screenshot(str(SHOTS / shot_name(page))), f"no screenshot of {page}"

    problems = []
    if mathjax.startswith(("MathJax did not", "MathJax failed")):
        problems.append(mathjax)
    errors = [e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    problems += [f"console error: {m}" for m in errors]
    problems += [f"image did not load: {src}" for src in browser.execute_script(BROKEN_IMAGES)]
    origin = f"{urllib.parse.urlsplit(url).scheme}://{urllib.parse.urlsplit(url).netloc}"
    problems += [f"broken link: {b}" for b in broken_links(browser.execute_script(LINKS), origin)]
    problems += [f"MathJax error: {m}" for m in browser.execute_script(MATHJAX_ERRORS)]
    problems += [f"raw TeX: ...{s}..." for s in raw_tex(browser.execute_script(VISIBLE_PROSE))]
    problems += [f"wider than the text column: {w}" for w in browser.execute_script(TOO_WIDE)]
    for width in (WIDTH, *NARROW_WIDTHS):
        if width != WIDTH:
            browser.set_window_size(width, 1000)
            time.sleep(0.3)
        problems += [f"at {width} px, not inside its own box: {w}" for w in browser.execute_script(NOT_IN_ITS_BOX)]
        wider = browser.execute_script(DOCUMENT_WIDER)
        problems += [f"at {width} px, the page is wider than the window: {wider}"] if wider else []
    problems += [f"requested from outside the book: {r}" for r in browser.execute_script(RESOURCES)
                 if not r.startswith(origin + "/") and not r.startswith(("data:", "blob:"))]
    assert not problems, f"{page} ({url}):\n  " + "\n  ".join(problems)

