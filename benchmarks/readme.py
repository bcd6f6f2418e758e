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


def main(argv=None):
    """``python benchmarks/readme.py RESULTS.json README.md``: regenerate the Performance block."""
    import argparse
    import json
    import os
    import sys

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import report

    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("results", help="the JSON file of a full run of benchmarks/run.py")
    ap.add_argument("readme", help="the Markdown file with a `performance` block")
    args = ap.parse_args(argv)
    with open(args.results) as fh:
        res = json.load(fh)
    if res.get("quick"):
        ap.error(f"{args.results} is a --quick run: its timings are a smoke test, not results")
    splice(args.readme, "performance", report.readme_block(res, args.results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
