"""Runs the snippets of a documentation page in order, as a reader would type them: every
```python block in one interpreter session (a later block uses what an earlier one made),
every ```sh block with bash (``set -euo pipefail``), all in the current folder.

    python tests/docs_runner.py PAGE.md [--skip LINE ...]

A ```text block right after a run block, marked ``<!-- output -->``, is what that block
prints: the runner checks it (timings aside, see :func:`normalize`).

Exit status 0 when every block ran; otherwise the first failing block's ``PAGE:LINE`` and
its error on stderr, exit 1. tests/test_docs_snippets.py runs each page in a folder holding
the example models the pages name.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import re
import subprocess
import sys
import traceback

#: fence languages run (anything else, ```text included, is shown, not run)
LANGS = ("python", "sh")


@dataclasses.dataclass(frozen=True)
class Block:
    page: str
    line: int          # of the opening fence, 1-based
    lang: str
    code: str
    before: str        # the text between the previous block and this one

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"


def blocks(page: str, text: str) -> list[Block]:
    """Every fenced block of a page, any language."""
    out, lines, i, last = [], text.split("\n"), 0, 0
    while i < len(lines):
        m = re.match(r"^( *)```\s*([\w-]*)\s*$", lines[i])  # indented: inside a list item
        if m:
            indent = len(m.group(1))
            j = i + 1
            while j < len(lines) and not lines[j].lstrip().startswith("```"):
                j += 1
            code = "\n".join(line[indent:] for line in lines[i + 1:j]) + "\n"
            out.append(Block(page, i + 1, m.group(2), code, "\n".join(lines[last:i])))
            last = j + 1
            i = j
        i += 1
    return out


# a timing or a throughput: the only part of a command's output that differs between runs
_TIMING = re.compile(r"\d+:\d\d(:\d\d)? \(\d+\.\d+ s, [\d.]+ \w+/s (read|written)\)")


def normalize(text: str) -> str:
    return _TIMING.sub("TIME", text).strip()


def shown_outputs(page_blocks: list[Block]) -> dict[int, Block]:
    """Run block line -> the ```text block marked as its output."""
    out = {}
    for b, nxt in zip(page_blocks, page_blocks[1:]):
        if b.lang in LANGS and nxt.lang == "text" and re.search(r"<!-- output -->\s*$",
                                                                nxt.before):
            out[b.line] = nxt
    return out


def run(page: str, skip: set[int]) -> int:
    with open(page, encoding="utf-8") as f:
        every = blocks(page, f.read())
    shown = shown_outputs(every)
    namespace: dict = {"__name__": "__main__"}
    for b in (b for b in every if b.lang in LANGS and b.line not in skip):
        print(f"--- {b.where} ({b.lang})", flush=True)
        printed = io.StringIO()
        try:
            if b.lang == "python":
                with contextlib.redirect_stdout(printed):
                    exec(compile(b.code, b.where, "exec"), namespace)
            else:
                r = subprocess.run(["bash", "-euo", "pipefail", "-c", b.code], check=True,
                                   stdout=subprocess.PIPE, text=True)
                printed.write(r.stdout)
        except BaseException as e:  # noqa: BLE001 - every failure is reported the same way
            detail = (f"exit status {e.returncode}" if isinstance(e, subprocess.CalledProcessError)
                      else traceback.format_exc())
            print(f"{b.where}: the {b.lang} block failed: {detail}", file=sys.stderr)
            return 1
        sys.stdout.write(printed.getvalue())
        sys.stdout.flush()
        want = shown.get(b.line)
        if want is not None and normalize(printed.getvalue()) != normalize(want.code):
            print(f"{want.where}: shows another output than the block at {b.where} prints:\n"
                  f"{printed.getvalue()}", file=sys.stderr)
            return 1
    return 0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("page")
    ap.add_argument("--skip", type=int, nargs="*", default=[],
                    help="line numbers of blocks not to run")
    args = ap.parse_args()
    sys.exit(run(args.page, set(args.skip)))


if __name__ == "__main__":
    main()
