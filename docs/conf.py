"""Sphinx configuration of the docs site: Markdown pages (MyST) in docs/, built by `make docs`.

The build is strict (`-W --keep-going -n`): a broken link between pages, a page missing from the
table of contents or a missing image fails it, locally and in CI. Nothing is fetched from the
network (no intersphinx), so it builds offline.
"""

project = "OpenSPC"
author = "OpenSPC"

extensions = ["myst_parser"]
source_suffix = {".md": "markdown"}
root_doc = "index"
# Only Markdown is a page; the AsyncAPI files, screenshots and this file are not sources.
exclude_patterns = ["_build"]

# `[text](page.md#a-heading)` links to headings down to ###.
myst_heading_anchors = 3
myst_enable_extensions = ["colon_fence"]

html_theme = "furo"
html_title = "OpenSPC"
# No "view source" copies of the Markdown in the built site.
html_copy_source = False
html_show_sourcelink = False
