import re
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailfleet.content import SpintaxError, parse_spintax, spin


def test_a_group_becomes_one_of_its_options() -> None:
    outputs = {spin("{Hi|Hello|Hey} there", f"1:{lead}:1") for lead in range(60)}
    assert outputs == {"Hi there", "Hello there", "Hey there"}


def test_same_seed_renders_the_same_text() -> None:
    source = "{Hi|Hello|Hey}, {quick|short} {note|message|line}"
    assert spin(source, "7:42:2") == spin(source, "7:42:2")
    assert len({spin(source, f"7:{lead}:2") for lead in range(40)}) > 3


def test_nested_groups_spin_only_when_chosen() -> None:
    outputs = {spin("{a|{b|c}}", str(seed)) for seed in range(80)}
    assert outputs == {"a", "b", "c"}


def test_empty_option_makes_a_word_optional() -> None:
    outputs = {spin("Hi{ there|}!", str(seed)) for seed in range(40)}
    assert outputs == {"Hi there!", "Hi!"}


def test_braces_without_a_pipe_are_text() -> None:
    assert spin("{foo} and {x {a|a} y}", "s") == "{foo} and {x a y}"
    assert parse_spintax("p { color: red; }").groups == 0


def test_jinja_markup_is_never_spintax() -> None:
    source = (
        "{{ first_name | default('there') }} {% if company %}at {{ company|upper }}{% endif %}"
        "{# a|b #}"
    )
    assert spin(source, "s") == source
    assert parse_spintax(source).groups == 0


def test_jinja_inside_an_option_is_copied_whole() -> None:
    source = "{Hi {{ first_name | default('there') }}|Hello {{ name }}}"
    outputs = {spin(source, str(seed)) for seed in range(30)}
    assert outputs == {"Hi {{ first_name | default('there') }}", "Hello {{ name }}"}


def test_a_quoted_closer_inside_jinja_does_not_end_it() -> None:
    source = "{{ x | default('}}|') }} {a|a}"
    assert spin(source, "s") == "{{ x | default('}}|') }} a"


def test_raw_blocks_are_left_alone() -> None:
    source = "{% raw %}{a|b}{% endraw %}"
    assert spin(source, "s") == source


def test_unclosed_brace_reports_line_and_column() -> None:
    with pytest.raises(SpintaxError) as info:
        parse_spintax("Hello\nthere {a|b")
    assert (info.value.line, info.value.column) == (2, 7)
    assert "unclosed '{' at line 2, column 7" in str(info.value)


def test_unmatched_closing_brace_is_reported() -> None:
    with pytest.raises(SpintaxError, match=r"unmatched '}' at line 1, column 4"):
        parse_spintax("{a}}")


def test_unclosed_jinja_is_reported() -> None:
    with pytest.raises(SpintaxError, match=r"unclosed Jinja '\{\{' at line 1, column 4"):
        parse_spintax("Hi {{ first_name")


def test_deep_nesting_does_not_recurse() -> None:
    depth = 5000
    source = "{a|" * depth + "b" + "}" * depth
    assert spin(source, "s") in {"a", "b"}


@dataclass(frozen=True)
class Group:
    options: tuple[tuple["Node", ...], ...]


Node = str | Group

TEXT = st.text(alphabet="abc XYZ,.!é\n", max_size=6)


def _option(children: st.SearchStrategy[Node]) -> st.SearchStrategy[tuple[Node, ...]]:
    return st.lists(children, max_size=3).map(tuple)


NODES: st.SearchStrategy[Node] = st.recursive(
    TEXT,
    lambda children: st.lists(_option(children), min_size=2, max_size=4).map(
        lambda options: Group(tuple(options))
    ),
    max_leaves=12,
)


def _build(nodes: tuple[Node, ...]) -> tuple[str, str]:
    """Return the spintax source of ``nodes`` and a regex matching every rendering."""
    source, pattern = [], []
    for node in nodes:
        if isinstance(node, str):
            source.append(node)
            pattern.append(re.escape(node))
            continue
        built = [_build(option) for option in node.options]
        if built[0][0].startswith("{"):
            # "{{" always opens Jinja, so a group cannot start with a group.
            built[0] = ("x" + built[0][0], "x" + built[0][1])
        source.append("{" + "|".join(b[0] for b in built) + "}")
        pattern.append("(?:" + "|".join(b[1] for b in built) + ")")
    return "".join(source), "".join(pattern)


@settings(max_examples=300)
@given(nodes=st.lists(NODES, max_size=4).map(tuple), seed=st.text(max_size=12))
def test_rendering_is_deterministic_and_picks_only_options(
    nodes: tuple[Node, ...], seed: str
) -> None:
    source, pattern = _build(nodes)
    first = spin(source, seed)
    assert first == spin(source, seed)
    assert "|" not in first and "{" not in first and "}" not in first
    assert re.fullmatch(pattern, first, flags=re.DOTALL)


@settings(max_examples=300)
@given(st.text(alphabet="{}|%#ab '\"\n", max_size=30))
def test_arbitrary_text_parses_or_raises_spintax_error(source: str) -> None:
    try:
        parsed = parse_spintax(source)
    except SpintaxError as exc:
        assert 0 <= exc.position <= len(source)
    else:
        assert parsed.render("s") == parsed.render("s")
