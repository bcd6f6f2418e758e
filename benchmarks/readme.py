"""Put generated Markdown into README.md between ``<!-- BEGIN name -->`` and ``<!-- END name -->``.

The benchmark scripts call :func:`splice` so that README tables come from a
run, never from hand edits.
"""

import re


def splice(path, name, text):
    """Replace the block `name` of the Markdown file `path` with `text`."""
    with open(path) as fh:
        doc = fh.read()
    begin, end = f"<!-- BEGIN {name} -->", f"<!-- END {name} -->"
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.S)
    if not pattern.search(doc):
        raise ValueError(f"{path} has no block {begin} ... {end} to fill.")
    doc = pattern.sub(lambda _: f"{begin}\n{text.strip()}\n{end}", doc)
    with open(path, "w") as fh:
        fh.write(doc)
