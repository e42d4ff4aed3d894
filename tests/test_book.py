"""Checks on the book built by `python -m instab.book build --params ci` (run by `make test`)."""

import json

import pytest

from instab import book

pytestmark = pytest.mark.book
HTML = book.build_root() / "html"


def test_index_and_every_chapter_page_exist_with_figures():
    assert (HTML / "index.html").exists()
    assert 'rel="icon"' in (HTML / "index.html").read_text(), "the redirect page has no icon (a /favicon.ico 404)"
    for name in book.chapters():
        page = HTML / "book" / f"{name}.html"
        assert page.exists(), f"no page for chapter {name}"
        assert "<img" in page.read_text(), f"chapter {name} has no figure"


def test_every_chapter_wrote_results_and_all_claims_are_sane():
    """A claim that does not hold is a verdict (refuted, corrected, …), not a failure; a claim that
    is not sane (a NaN, a broken control) fails its chapter."""
    from instab.report import sane

    for name in book.chapters():
        res = json.loads((book.out_dir(name, "ci") / "results.json").read_text())
        assert res["claims"], f"chapter {name} reproduces no claim"
        assert all(sane(c) for c in res["claims"]), [c["name"] for c in res["claims"] if not sane(c)]


def test_scorecard_lists_every_claim_of_every_chapter():
    card = (book.build_root() / "site" / "book" / "_scorecard.md").read_text()
    assert "Scale of this build: **ci**" in card
    assert "inconclusive" in (HTML / "book" / "intro.html").read_text()  # the verdicts are explained
    for name in book.chapters():
        assert f"### {{doc}}`{name}`" in card, f"scorecard has no section for {name}"
        res = json.loads((book.out_dir(name, "ci") / "results.json").read_text())
        for claim in res["claims"]:
            cell = claim["name"].replace("|", "\\|")
            label = claim.get("shown_in")
            assert label, f"{name}: claim {claim['name']!r} does not name the figure or section that shows it"
            assert f"| {cell} ({{numref}}`{label}`) → *" in card, f"scorecard lacks {name}: {claim['name']}"
            source = (book.ROOT / "book" / f"{name}.md").read_text()
            assert f"({label})=" in source or f":name: {label}" in source, (
                f"{name}: claim {claim['name']!r} is shown in {label!r}, which is no target of book/{name}.md")
    n_claims = sum(len(json.loads((book.out_dir(n, "ci") / "results.json").read_text())["claims"])
                   for n in book.chapters())
    holds = ("| yes |", "| no |", "| **not sane** |")
    rows = [ln for ln in card.splitlines() if ln.startswith("| ") and ln.rstrip().endswith(holds)]
    assert len(rows) == n_claims
    assert "Executed under: floating-point environment" in card and "| inconclusive |" in card


def test_every_claim_carries_a_verdict():
    from instab.report import VERDICTS

    for name in book.chapters():
        res = json.loads((book.out_dir(name, "ci") / "results.json").read_text())
        assert res["environment"]["cpu_capability"], f"{name}: no floating-point environment recorded"
        for c in res["claims"]:
            assert c["verdict"] in VERDICTS, f"{name}: {c['name']} has verdict {c.get('verdict')!r}"


def test_second_build_skips_unchanged_chapters(capsys):
    book.main(["execute", "--params", "ci"])
    out = capsys.readouterr().out
    for name in book.chapters():
        assert f"skipped {name} (ci)" in out


def test_bad_scale_and_chapter_are_named():
    with pytest.raises(SystemExit):
        book.main(["build", "--params", "huge"])
    with pytest.raises(SystemExit):
        book.main(["build", "--chapter", "nope"])


def test_hash_depends_on_scale():
    assert book.content_hash("heat", "ci") != book.content_hash("heat", "default")


def test_a_moved_expected_verdict_fails_the_build(tmp_path, monkeypatch, capsys):
    """The registry decides: with one finding's expected verdict changed, the driver exits non-zero
    naming the finding and both verdicts; with the registry as it is, the same call passes."""
    import yaml

    from instab.book import registry

    book.main(["execute", "--params", "ci", "--chapter", "heat"])  # cached: the registry check alone
    raw = yaml.safe_load(registry.REGISTRY.read_text())
    entry = next(f for f in raw["findings"] if f["chapter"] == "heat" and f["expected"]["ci"] != "refuted")
    was = entry["expected"]["ci"]
    entry["expected"] = {"ci": "refuted", "default": "refuted", "paper": None}
    moved = tmp_path / "findings.yml"
    moved.write_text(yaml.safe_dump(raw, allow_unicode=True))
    monkeypatch.setattr(registry, "REGISTRY", moved)
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        book.main(["execute", "--params", "ci", "--chapter", "heat"])
    assert e.value.code == book.cli.REGISTRY_DISAGREES
    assert f"{entry['id']}: verdict {was} at the ci scale, the registry expects refuted" in capsys.readouterr().err


def test_intro_cites_the_book_with_its_version_and_every_page_states_the_licences():
    from instab.book import release

    v = release.version()
    intro = (HTML / "index.html").read_text()
    if "@software" not in intro:  # the index redirects to the intro
        intro = (HTML / "book" / "intro.html").read_text()
    assert "@software" in intro and f"version {v}" in intro, "the intro has no citation with the version"
    for page in [HTML / "book" / "intro.html", *(HTML / "book" / f"{c}.html" for c in book.chapters())]:
        text = page.read_text()
        assert f"instab {v}" in text and "CC BY 4.0" in text and "MIT" in text, f"{page.name}: no licence footer"


def test_statistics_page_has_every_chapter_with_its_run():
    import re

    page = (HTML / "book" / "statistics.html").read_text()
    staged = (book.build_root() / "site" / "book" / "_statistics.md").read_text()
    ci = staged.split("## The ci scale", 1)[1].split("## ", 1)[0]
    for name in book.chapters():
        row = re.search(rf"^\| {{doc}}`{name} <{name}>` \| (\d{{4}}-\d\d-\d\d \d\d:\d\d UTC) \| ([^|]+) \| ([^|]+) \|$",
                        ci, flags=re.M)
        assert row, f"the statistics page has no ci row for {name}"
        assert row.group(2).strip().endswith(("s", "min")), row.group(0)
        assert f"| {name} | native: kernels" in ci, f"no environment row for {name}"
    assert "Libraries" in ci and "torch" in ci and "Execution statistics" in page


def test_every_chapter_page_links_its_downloads_and_each_resolves():
    import html.parser
    import urllib.parse

    class Links(html.parser.HTMLParser):
        def __init__(self):
            super().__init__()
            self.hrefs = []

        def handle_starttag(self, tag, attrs):
            a = dict(attrs)
            if tag == "a" and "download" in (a.get("class") or "").split():
                self.hrefs.append(a["href"])

    for name in book.chapters():
        out = book.out_dir(name, "ci")
        page = HTML / "book" / f"{name}.html"
        links = Links()
        links.feed(page.read_text())
        files = {}
        for href in links.hrefs:
            target = (page.parent / urllib.parse.unquote(href.split("#")[0])).resolve()
            assert target.is_file(), f"{name}: download link {href} does not resolve"
            files[target.name] = target
        assert "results.json" in files and files["results.json"].read_bytes() == (out / "results.json").read_bytes()
        svgs = sorted(p.name for p in out.glob("*.svg"))
        assert svgs and svgs == sorted(n for n in files if n.endswith(".svg")), f"{name}: figures as SVG"
        assert "values.csv" in files, f"{name}: no CSV of its numbers"


def test_the_pdf_has_every_chapter_and_every_numbered_figure():
    """The whole-book PDF (make book, make pdf), read with a PDF library: every chapter's title and
    every figure number the HTML book shows are in its text, every figure's image is in it, and it
    is printed with the book's styles (no navigation, search box or skip link in the text)."""
    import re
    import unicodedata

    import pypdf

    from instab.book import pdf

    path = HTML / pdf.PDF_NAME
    assert path.exists(), "make book wrote no PDF"
    pages = pypdf.PdfReader(path).pages
    text = " ".join(page.extract_text() for page in pages)
    flat = unicodedata.normalize("NFKC", re.sub(r"\s+", " ", text))  # the printed fonts' ligatures: ﬂ → fl
    for chrome in ("Skip to main content", "Search Ctrl+K", "Back to top"):
        assert chrome not in flat, f"the PDF was printed without the book's styles: it shows {chrome!r}"
    figures = sum(len(re.findall(r'<img [^>]*src="[^"]*_images/[^"]*\.png"', (HTML / "book" / f"{n}.html").read_text()))
                  for n in book.chapters())
    assert sum(len(page.images) for page in pages) >= figures > 0, "the PDF lacks figures' images"
    for name in book.chapters():
        page = (HTML / "book" / f"{name}.html").read_text()
        title = re.sub(r"<[^>]+>|¶|#", "", re.search(r"<h1[^>]*>(.*?)</h1>", page, re.S).group(1))
        title = re.sub(r"\s+", " ", title).strip()
        assert title in flat, f"the PDF lacks chapter {name}'s title {title!r}"
        for number in re.findall(r'caption-number">(Fig\. [\d.]+)', page):
            assert number.strip() in flat, f"the PDF lacks {number.strip()} of chapter {name}"
