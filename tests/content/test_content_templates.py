import jinja2
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailfleet.content import (
    LEAD_VARIABLES,
    SENDER_VARIABLES,
    TemplateError,
    compile_template,
    render,
    spin,
    template_variables,
)

ALLOWED = template_variables(["linkedin_url", "icebreaker"])


def _render(source: str, context: dict[str, str | None], seed: str = "1:1:1") -> str:
    compiled = compile_template(source, field="step 1 body_text", allowed=ALLOWED)
    return render(compiled, context, seed)


def test_allowed_names_cover_lead_sender_and_custom_fields() -> None:
    assert {"first_name", "company", "timezone", "email"} <= LEAD_VARIABLES
    assert {"sender_name", "sender_email", "unsubscribe_url"} <= SENDER_VARIABLES
    assert {"linkedin_url", "icebreaker"} <= ALLOWED


def test_variables_render_with_fallbacks() -> None:
    source = "Hi {{ first_name | default('there') }} at {{ company }}"
    assert _render(source, {"first_name": "Zoë", "company": "Acme"}) == "Hi Zoë at Acme"


@pytest.mark.parametrize("value", [None, "", "   "])
def test_default_applies_to_empty_blank_and_none(value: str | None) -> None:
    assert _render("Hi {{ first_name | default('there') }}", {"first_name": value}) == "Hi there"


def test_default_applies_to_a_missing_value_and_d_is_its_alias() -> None:
    assert _render("Hi {{ first_name | d('there') }}!", {}) == "Hi there!"


def test_missing_values_without_default_render_empty() -> None:
    assert _render("[{{ company }}][{{ icebreaker }}]", {"company": None}) == "[][]"


def test_unknown_variable_names_field_line_and_known_names() -> None:
    with pytest.raises(TemplateError) as info:
        compile_template("Hello\n{{ frist_name }}", field="step 2 body_text", allowed=ALLOWED)
    error = info.value
    assert error.field == "step 2 body_text"
    assert error.line == 2
    message = str(error)
    assert message.startswith("step 2 body_text, line 2: unknown variable 'frist_name'")
    assert "did you mean 'first_name'?" in message
    assert "known: company, email, first_name, icebreaker" in message


def test_unknown_variable_is_an_error_even_with_a_default() -> None:
    with pytest.raises(TemplateError, match="unknown variable 'frist_name'"):
        compile_template(
            "{{ frist_name | default('there') }}", field="step 1 subject", allowed=ALLOWED
        )


def test_every_unknown_variable_is_reported() -> None:
    with pytest.raises(TemplateError) as info:
        compile_template("{{ a }}\n{{ b }}", field="f", allowed=ALLOWED)
    assert [(p.line, p.message) for p in info.value.problems] == [
        (1, "unknown variable 'a'"),
        (2, "unknown variable 'b'"),
    ]


def test_names_set_or_looped_in_the_template_are_not_unknown() -> None:
    source = "{% set greeting = 'Hi' %}{{ greeting }} {{ first_name }}"
    assert _render(source, {"first_name": "Bo"}) == "Hi Bo"


def test_syntax_error_names_field_and_line() -> None:
    with pytest.raises(TemplateError) as info:
        compile_template("Hi\nthere\n{% if company %}x", field="step 3 body_text", allowed=ALLOWED)
    assert info.value.line == 3
    assert str(info.value).startswith("step 3 body_text, line 3: ")


def test_malformed_spintax_names_field_line_and_column() -> None:
    with pytest.raises(TemplateError) as info:
        compile_template("ok\n{Hi|Hello", field="step 1 subject", allowed=ALLOWED)
    assert str(info.value) == "step 1 subject, line 2: malformed spintax: unclosed '{' (column 1)"


def test_a_block_straddling_spintax_options_is_refused() -> None:
    with pytest.raises(TemplateError, match="must open and close inside one spintax option"):
        compile_template("{a {% if company %}|b}{% endif %}", field="f", allowed=ALLOWED)


def test_unknown_filter_is_reported() -> None:
    with pytest.raises(TemplateError, match="No filter named 'defualt'"):
        compile_template("{{ first_name | defualt('x') }}", field="f", allowed=ALLOWED)


def test_globals_and_includes_are_not_available() -> None:
    with pytest.raises(TemplateError, match="unknown variable 'range'"):
        compile_template("{% for i in range(3) %}x{% endfor %}", field="f", allowed=ALLOWED)
    with pytest.raises(TemplateError, match="cannot include"):
        compile_template("{% include 'other.txt' %}", field="f", allowed=ALLOWED)


def test_the_sandbox_hides_python_internals() -> None:
    out = _render("{{ email.__class__.__mro__ }}", {"email": "a@b.com"})
    assert "class" not in out


def test_spintax_and_jinja_render_together() -> None:
    source = "{Hi|Hello|Hey} {{ first_name | default('there') }}, {quick|short} note"
    outputs = {_render(source, {"first_name": "Ann"}, seed=f"3:{n}:1") for n in range(60)}
    assert "Hi Ann, quick note" in outputs
    assert len(outputs) == 6


def test_jinja_conditionals_inside_an_option() -> None:
    source = "{Hi|Hello}{% if company %} from {{ company }}{% endif %}"
    assert _render(source, {"company": "Acme"}, seed="x").endswith(" from Acme")
    assert not _render(source, {"company": ""}, seed="x").endswith("from ")


def test_lead_values_are_not_spun() -> None:
    assert _render("{{ company }}", {"company": "{A|B}"}) == "{A|B}"


def test_html_bodies_escape_lead_data() -> None:
    compiled = compile_template(
        "<p>Hi {{ first_name }}</p>", field="step 1 body_html", allowed=ALLOWED, html=True
    )
    assert compiled.html
    out = render(compiled, {"first_name": '<script>alert("x")</script>'}, "s")
    assert out == "<p>Hi &lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;</p>"


def test_text_bodies_do_not_escape() -> None:
    assert _render("{{ company }}", {"company": "AT&T <sales>"}) == "AT&T <sales>"


def test_trailing_newline_is_kept() -> None:
    assert _render("Hi\n", {}) == "Hi\n"


def test_compiled_template_lists_the_variables_it_uses() -> None:
    compiled = compile_template(
        "{Hi|Hey} {{ first_name }} {{ linkedin_url }}", field="f", allowed=ALLOWED
    )
    assert compiled.variables == {"first_name", "linkedin_url"}


SEEDS = st.text(max_size=10)


@given(seed=SEEDS, name=st.text(alphabet="abcXYZ é", max_size=8))
def test_render_equals_spinning_then_rendering(seed: str, name: str) -> None:
    source = "{Hi|Hello|{Hey|Yo}} {{ first_name }}{ at {{ company }}|}, {a|b|c}\n"
    context: dict[str, str | None] = {"first_name": name, "company": "Acme"}
    plain = jinja2.Environment(keep_trailing_newline=True)
    expected = plain.from_string(spin(source, seed)).render(context)
    assert _render(source, context, seed) == expected
