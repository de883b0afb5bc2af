"""The copy-paste examples of README.md, for the tests that run them: the first fenced block of
a language under a heading (up to the next heading of the same or a higher level)."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_example(heading: str, language: str, index: int = 0) -> str:
    """The text of fenced block number `index` (```language) in the section `heading`."""
    lines = README.read_text().splitlines()
    start = level = None
    for i, line in enumerate(lines):
        match = re.match(r"^(#+) (.*)$", line)
        if match and match.group(2).strip() == heading:
            start, level = i + 1, len(match.group(1))
            break
    if start is None:
        raise LookupError(f"README has no section {heading!r}")
    blocks, block, fenced = [], None, False
    for line in lines[start:]:
        match = re.match(r"^(#+) ", line)
        if not fenced and match and len(match.group(1)) <= level:
            break
        if line.strip().startswith("```"):
            if not fenced and line.strip() == f"```{language}":
                block = []
            elif fenced and block is not None:
                blocks.append("\n".join(block) + "\n")
                block = None
            fenced = not fenced
        elif block is not None:
            block.append(line)
    if len(blocks) <= index:
        raise LookupError(f"README section {heading!r} has no ```{language} block {index}")
    return blocks[index]
