"""Turn a raw fill at the cursor into text fit to show as ghost text.

The model sees the code after the cursor, but a fill can still repeat it (``foo(x)`` + ``)``) or
stop mid-expression when its token budget runs out. The text offered never repeats what follows
the cursor and never leaves the brackets worse balanced than they were.
"""

from __future__ import annotations

import re

PAIRS = {")": "(", "]": "[", "}": "{"}
OPENERS = frozenset(PAIRS.values())
CONTEXT_CHARS = 4000  # how far before and after the cursor brackets are counted
_QUOTES = ('"""', "'''", '"', "'", "`")
_IDENT = re.compile(r"\w")


def brackets(text: str):
    """(index, bracket) for each bracket outside string literals and line comments."""
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch in "([{)]}":
            yield i, ch
            i += 1
        elif ch == "#" or text.startswith("//", i):
            end = text.find("\n", i)
            i = n if end < 0 else end + 1
        elif ch in "\"'`":
            quote = next(q for q in _QUOTES if text.startswith(q, i))
            i = _string_end(text, i + len(quote), quote)
        else:
            i += 1


def _string_end(text: str, i: int, quote: str) -> int:
    n = len(text)
    while i < n:
        if text[i] == "\\":
            i += 2
        elif text.startswith(quote, i):
            return i + len(quote)
        elif text[i] == "\n" and len(quote) == 1 and quote != "`":
            return i + 1  # an unterminated one-line string ends with its line
        else:
            i += 1
    return n


def open_brackets(text: str) -> list[str]:
    """Openers left unclosed at the end of ``text`` (innermost last)."""
    stack: list[str] = []
    for _, ch in brackets(text):
        if ch in OPENERS:
            stack.append(ch)
        elif stack and stack[-1] == PAIRS[ch]:
            stack.pop()
    return stack


def leading_closers(text: str) -> int:
    """Closers in ``text`` that close something opened before it."""
    depth = count = 0
    for _, ch in brackets(text):
        if ch in OPENERS:
            depth += 1
        elif depth:
            depth -= 1
        else:
            count += 1
    return count


def balance(insert: str, before: str, after: str) -> str:
    """Cut ``insert`` so that inserting it leaves the brackets no worse than before.

    It may close brackets opened before the cursor that nothing after the cursor closes; a
    closer that matches nothing ends it; a bracket it opens and does not close is cut away.
    """
    owed = open_brackets(before[-CONTEXT_CHARS:])
    owed = owed[: max(0, len(owed) - leading_closers(after[:CONTEXT_CHARS]))]
    stack: list[tuple[int, str]] = []
    for i, ch in brackets(insert):
        if ch in OPENERS:
            stack.append((i, ch))
        elif stack and stack[-1][1] == PAIRS[ch]:
            stack.pop()
        elif not stack and owed and owed[-1] == PAIRS[ch]:
            owed.pop()
        else:
            return insert[:i].rstrip() if not stack else insert[: stack[0][0]].rstrip()
    return insert[: stack[0][0]].rstrip() if stack else insert


def drop_repeated_suffix(insert: str, after: str) -> str:
    """Remove what the fill repeats of the text after the cursor."""
    rest = after.split("\n", 1)[0].rstrip("\r")
    # the fill's end runs into the suffix: "foo(x" + ")" written as "foo(x)"
    for k in range(min(len(insert), len(rest)), 0, -1):
        piece = rest[:k]
        if insert.endswith(piece) and (k > 1 or not _IDENT.match(piece)):
            insert = insert[:-k]
            break
    # the fill writes the rest of the line, then goes on
    if len(rest.strip()) >= 3 and rest.strip() in insert:
        insert = insert[: insert.index(rest.strip())]
    # the fill writes the next line of code again
    following = next((ln.strip() for ln in after.split("\n")[1:] if ln.strip()), None) if not rest.strip() else None
    if following:
        lines = insert.split("\n")
        for i in range(1, len(lines)):
            if lines[i].strip() == following:
                insert = "\n".join(lines[:i])
                break
    return insert


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" \t"))


def cut_block(insert: str, before: str) -> str:
    """End a multi-line fill where it leaves the block the cursor is in."""
    line = before.rsplit("\n", 1)[-1]
    opener = line.rstrip().endswith((":", "{"))
    base = _indent(line) if line.strip() else len(line)
    lines = insert.split("\n")
    for i in range(1, len(lines)):
        text = lines[i]
        if text.strip() and (_indent(text) < base or (opener and _indent(text) <= _indent(line))):
            return "\n".join(lines[:i])
    return insert


def tidy(insert: str, before: str, after: str, single_line: bool) -> str:
    """The ghost text for ``insert`` between ``before`` and ``after`` ('' when nothing is left)."""
    insert = insert.replace("\r\n", "\n")
    if single_line:
        insert = insert.split("\n", 1)[0]
    else:
        insert = cut_block(insert, before)
    insert = drop_repeated_suffix(insert, after)
    insert = balance(insert, before, after)
    rest = after.split("\n", 1)[0]
    if not rest.strip():
        insert = insert.rstrip()
    return insert if insert.strip() else ""
