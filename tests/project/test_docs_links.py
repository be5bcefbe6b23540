"""Every relative Markdown link in README.md and docs/ names a file that exists.

The README links into docs/ and the pages link to each other, to screenshots and to files in the
repository; a page renamed or moved would leave a link that leads nowhere on the forge. `make docs`
(Sphinx, warnings as errors) catches it too, but only where Sphinx is installed and run; this test
runs with the rest of `make test`, without Sphinx.
"""

import re
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parents[2]

# [text](target) and ![alt](target), with an optional "title" after the target.
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
FENCE = re.compile(r"^(```|~~~)")
CODE_SPAN = re.compile(r"(`+).*?\1")
# Links that leave the repository or stay on the page.
EXTERNAL = re.compile(r"^([a-z][a-z0-9+.-]*:|//|#)", re.IGNORECASE)


def markdown_links(text: str) -> list[tuple[int, str]]:
    """(line number, target) of each link outside code blocks and code spans."""
    links = []
    in_fence = False
    for number, line in enumerate(text.splitlines(), start=1):
        if FENCE.match(line.lstrip()):
            in_fence = not in_fence
            continue
        if in_fence:
            continue
        for match in LINK.finditer(CODE_SPAN.sub("", line)):
            links.append((number, match.group(1)))
    return links


def broken_links(path: Path) -> list[str]:
    """The links of one Markdown file whose target (without its #fragment) is not a file or folder."""
    broken = []
    for number, target in markdown_links(path.read_text()):
        if EXTERNAL.match(target):
            continue
        relative = target.split("#", 1)[0]
        if not (path.parent / relative).exists():
            shown = path.relative_to(BASE_DIR) if path.is_relative_to(BASE_DIR) else path
            broken.append(f"{shown}:{number}: {target}")
    return broken


def documentation() -> list[Path]:
    return [BASE_DIR / "README.md", *sorted((BASE_DIR / "docs").rglob("*.md"))]


def test_every_relative_link_in_the_readme_and_docs_names_a_file_that_exists():
    files = documentation()
    assert BASE_DIR / "docs" / "index.md" in files
    broken = [link for path in files for link in broken_links(path)]
    assert broken == []


def test_the_readme_links_to_the_docs_pages():
    linked = {target for _, target in markdown_links((BASE_DIR / "README.md").read_text())}
    assert "docs/index.md" in linked
    assert "docs/operations.md" in linked


def test_a_link_to_a_missing_file_is_found_and_code_urls_and_fragments_are_not(tmp_path):
    (tmp_path / "there.md").write_text("# There\n")
    (tmp_path / "shot.png").write_bytes(b"")
    page = tmp_path / "page.md"
    page.write_text(
        "See [there](there.md#a-heading), ![a shot](shot.png) and [the site](https://example.com).\n"
        '[Gone](gone.md) and ![lost](img/lost.png "a title").\n'
        "`[not a link](nowhere.md)` and [up](#top).\n"
        "```\n[in a block](missing.md)\n```\n"
    )
    assert markdown_links(page.read_text()) == [
        (1, "there.md#a-heading"),
        (1, "shot.png"),
        (1, "https://example.com"),
        (2, "gone.md"),
        (2, "img/lost.png"),
        (3, "#top"),
    ]
    assert [line.split(": ", 1)[1] for line in broken_links(page)] == ["gone.md", "img/lost.png"]
