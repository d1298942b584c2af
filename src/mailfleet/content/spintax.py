"""Spintax: ``{Hi|Hello|Hey}`` groups, nested ``{a|{b|c}}``, chosen from a seed.

A group is a pair of single braces holding at least one ``|``. Braces without a
``|`` are plain text (``{foo}`` stays ``{foo}``), and Jinja2 markup is never
spintax: ``{{ … }}``, ``{% … %}``, ``{# … #}`` and ``{% raw %}…{% endraw %}``
are copied whole, so a ``|`` filter inside them does not split a group.

Choices are a pure function of the seed (for example
``f"{campaign_id}:{lead_id}:{step}"``) and of the group's ordinal in the
source, hashed with BLAKE2b: a retry renders the same text, and one group's
choice does not depend on which options were picked elsewhere.

Because ``{{`` always opens Jinja, a group cannot start with a nested group
(``{{a|b}|c}``); write ``{{a|b} |c}`` or reorder the options. A literal brace
that would unbalance the text is written as Jinja: ``{{ "{" }}``.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field

__all__ = ["Spintax", "SpintaxError", "parse_spintax", "spin"]

_RAW_OPEN = re.compile(r"\{%[-+]?\s*raw\s*[-+]?%\}")
_RAW_CLOSE = re.compile(r"\{%[-+]?\s*endraw\s*[-+]?%\}")
_SPECIAL = re.compile(r"[{}|]")
_JINJA_CLOSERS = {"{": "}}", "%": "%}", "#": "#}"}


class SpintaxError(ValueError):
    """Malformed spintax: an unclosed or unmatched brace, or unclosed Jinja markup."""

    def __init__(self, problem: str, source: str, position: int) -> None:
        self.problem = problem
        self.position = position
        self.line = source.count("\n", 0, position) + 1
        self.column = position - (source.rfind("\n", 0, position) + 1) + 1
        super().__init__(f"{problem} at line {self.line}, column {self.column}")


@dataclass(frozen=True, slots=True)
class _Group:
    """One ``{a|b|…}`` group; ``index`` is its ordinal in the source (by opening brace)."""

    index: int
    options: tuple[tuple[_Node, ...], ...]
    starts: tuple[int, ...]  # source offset where each option begins


_Node = str | _Group


@dataclass(slots=True)
class _Frame:
    """A brace opened and not yet closed while parsing."""

    start: int
    index: int
    options: list[list[_Node]] = field(default_factory=list)
    current: list[_Node] = field(default_factory=list)
    starts: list[int] = field(default_factory=list)


def _choice(seed: str, index: int, options: int) -> int:
    """Pick option ``0 <= k < options`` for group ``index`` under ``seed``."""
    key = f"{seed}\x1f{index}".encode("utf-8", "surrogatepass")
    digest = hashlib.blake2b(key, digest_size=8, person=b"mf-spintax").digest()
    # 64 bits modulo a handful of options: the bias is far below anything observable.
    return int.from_bytes(digest, "big") % options


def _jinja_end(source: str, start: int) -> int:
    """Return the index just past the Jinja markup opening at ``start``."""
    raw = _RAW_OPEN.match(source, start)
    if raw is not None:
        close = _RAW_CLOSE.search(source, raw.end())
        # An unclosed raw block is Jinja's to report, with its own message.
        return len(source) if close is None else close.end()
    kind = source[start + 1]
    closer = _JINJA_CLOSERS[kind]
    if kind == "#":
        end = source.find(closer, start + 2)
    else:
        # Inside {{ }} and {% %} a quoted "}}" does not close the tag (Jinja lexes strings).
        end = -1
        i = start + 2
        n = len(source)
        while i < n:
            c = source[i]
            if c in "'\"":
                j = i + 1
                while j < n and source[j] != c:
                    j += 2 if source[j] == "\\" else 1
                i = j + 1
                continue
            if source.startswith(closer, i):
                end = i
                break
            i += 1
    if end < 0:
        raise SpintaxError(f"unclosed Jinja '{{{kind}'", source, start)
    return end + len(closer)


def _parse(source: str) -> tuple[tuple[_Node, ...], int, int]:
    """Parse ``source`` without recursion; return the nodes, the brace count and the group count.

    Every opening brace gets an ordinal (its choice key), though braces without
    a ``|`` turn out to be text and never use theirs.
    """
    stack: list[_Frame] = []
    top: list[_Node] = []
    braces = 0
    groups = 0
    i = 0
    n = len(source)
    while i < n:
        current = stack[-1].current if stack else top
        match = _SPECIAL.search(source, i)
        if match is None:
            current.append(source[i:])
            break
        j = match.start()
        if j > i:
            current.append(source[i:j])
        char = source[j]
        if char == "{":
            if j + 1 < n and source[j + 1] in _JINJA_CLOSERS:
                end = _jinja_end(source, j)
                current.append(source[j:end])
                i = end
                continue
            stack.append(_Frame(start=j, index=braces, starts=[j + 1]))
            braces += 1
        elif char == "|":
            if stack:
                frame = stack[-1]
                frame.options.append(frame.current)
                frame.current = []
                frame.starts.append(j + 1)
            else:
                current.append("|")
        else:  # "}"
            if not stack:
                raise SpintaxError("unmatched '}'", source, j)
            frame = stack.pop()
            parent = stack[-1].current if stack else top
            if frame.options:
                frame.options.append(frame.current)
                options = tuple(tuple(option) for option in frame.options)
                parent.append(_Group(frame.index, options, tuple(frame.starts)))
                groups += 1
            else:
                # Braces without "|" are text; any group nested inside still spins.
                parent.append("{")
                parent.extend(frame.current)
                parent.append("}")
        i = j + 1
    if stack:
        raise SpintaxError("unclosed '{'", source, stack[-1].start)
    return tuple(_merge_text(top)), braces, groups


def _merge_text(nodes: list[_Node]) -> list[_Node]:
    """Join adjacent strings so rendering appends fewer pieces."""
    merged: list[_Node] = []
    for node in nodes:
        if isinstance(node, str) and merged and isinstance(merged[-1], str):
            merged[-1] = merged[-1] + node
        else:
            merged.append(node)
    return merged


@dataclass(frozen=True)
class Spintax:
    """A parsed spintax text, ready to render under any seed."""

    source: str
    groups: int
    _braces: int = field(repr=False, compare=False)
    _nodes: tuple[_Node, ...] = field(repr=False, compare=False)

    def choices(self, seed: str) -> tuple[int, ...]:
        """Return the option chosen for every brace ordinal under ``seed`` (0 for plain braces)."""
        sizes = [0] * self._braces
        stack: list[_Node] = list(self._nodes)
        while stack:
            node = stack.pop()
            if isinstance(node, _Group):
                sizes[node.index] = len(node.options)
                for option in node.options:
                    stack.extend(option)
        return tuple(_choice(seed, index, size) if size else 0 for index, size in enumerate(sizes))

    def render(self, seed: str) -> str:
        """Return the text with every group replaced by its seeded choice."""
        if not self.groups:
            return "".join(node for node in self._nodes if isinstance(node, str))
        out: list[str] = []
        stack: list[_Node] = list(reversed(self._nodes))
        while stack:
            node = stack.pop()
            if isinstance(node, str):
                out.append(node)
            else:
                chosen = node.options[_choice(seed, node.index, len(node.options))]
                stack.extend(reversed(chosen))
        return "".join(out)

    def to_jinja(self, choices_variable: str) -> str:
        """Return Jinja source that picks each group's option from ``choices_variable[i]``.

        Only ``{% if %}`` tags are inserted, never newlines, so Jinja reports
        errors on the same line numbers as the original source.
        """
        return _to_jinja(self._nodes, choices_variable)

    def options(self, choices_variable: str) -> list[tuple[int, str]]:
        """Return every option of every group as (source offset, Jinja source of the option)."""
        found: list[tuple[int, str]] = []
        stack: list[_Node] = list(self._nodes)
        while stack:
            node = stack.pop()
            if isinstance(node, _Group):
                for start, option in zip(node.starts, node.options, strict=True):
                    found.append((start, _to_jinja(option, choices_variable)))
                    stack.extend(option)
        return sorted(found)


def _to_jinja(nodes: tuple[_Node, ...], choices_variable: str) -> str:
    out: list[str] = []
    stack: list[_Node] = list(reversed(nodes))
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            out.append(node)
            continue
        parts: list[_Node] = []
        for k, option in enumerate(node.options):
            keyword = "if" if k == 0 else "elif"
            parts.append(f"{{% {keyword} {choices_variable}[{node.index}] == {k} %}}")
            parts.extend(option)
        parts.append("{% endif %}")
        stack.extend(reversed(parts))
    return "".join(out)


def parse_spintax(source: str) -> Spintax:
    """Parse ``source``; raise :class:`SpintaxError` with the position if it is malformed."""
    nodes, braces, groups = _parse(source)
    return Spintax(source=source, groups=groups, _braces=braces, _nodes=nodes)


def spin(source: str, seed: str) -> str:
    """Render the spintax in ``source`` deterministically for ``seed``."""
    return parse_spintax(source).render(seed)
