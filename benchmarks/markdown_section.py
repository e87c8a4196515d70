"""A section of a Markdown file that a benchmark rewrites: the text between two markers."""

from pathlib import Path


def write_section(
    path: Path, text: str, name: str = "analytics-bench", title: str = "Analytics (`make bench-analytics`)"
) -> None:
    """Replace what is between the markers `<!-- name:start -->` and `<!-- name:end -->` (the text around
    them is written by hand); append them, under `title`, if new."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    current = path.read_text()
    if start in current:
        before, rest = current.split(start, 1)
        after = rest.split(end, 1)[1]
    else:
        before, after = current.rstrip("\n") + f"\n\n## {title}\n\n", "\n"
    path.write_text(f"{before}{start}\n{text}{end}{after}")
