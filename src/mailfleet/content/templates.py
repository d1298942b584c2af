"""Message templates: Jinja2 variables with fallbacks, plus spintax, checked at save time.

A campaign's subject and bodies are compiled once, when the campaign is saved:
:func:`compile_template` parses the spintax and the Jinja2, and refuses any
variable that is not in the allowed set (lead fields, the import's custom
fields, sender variables). A name that is not allowed is an error even when it
carries a fallback, because ``{{ frist_name | default("there") }}`` would
otherwise greet every lead with "there" and nobody would notice the typo.

At send time :func:`render` only substitutes. Missing values render as the
empty string, and ``default`` treats empty, whitespace-only and ``None``
values as missing (as Jinja's ``default(x, true)`` does for falsy values), so a
blank ``first_name`` cell still gets its fallback.

The environment is Jinja2's :class:`~jinja2.sandbox.SandboxedEnvironment` with
no globals, loaders or includes: a template cannot reach Python internals or
other files. Template authors are the workspace's own users, so the sandbox is
not a guard against deliberately expensive templates.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Iterable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass

import jinja2
from jinja2 import meta, nodes
from jinja2.sandbox import SandboxedEnvironment

from mailfleet.content.spintax import Spintax, SpintaxError, parse_spintax

__all__ = [
    "LEAD_VARIABLES",
    "SENDER_VARIABLES",
    "CompiledTemplate",
    "TemplateError",
    "TemplateProblem",
    "compile_template",
    "render",
    "template_variables",
]

LEAD_VARIABLES: frozenset[str] = frozenset(
    {"email", "first_name", "last_name", "company", "title", "timezone"}
)
"""Variables every lead has (possibly empty)."""

SENDER_VARIABLES: frozenset[str] = frozenset({"sender_name", "sender_email", "unsubscribe_url"})
"""Variables the sending side fills in for every message."""

# The spintax choices travel in the render context under a name no CSV column
# can produce (leads normalise custom keys to lower snake_case without "__").
_CHOICES = "__spin__"
_HINT_BLOCKS = "; a {% … %} block must open and close inside one spintax option"


@dataclass(frozen=True, slots=True)
class TemplateProblem:
    """One thing wrong with a template: where (line, if known) and what."""

    line: int | None
    message: str

    def __str__(self) -> str:
        return self.message if self.line is None else f"line {self.line}: {self.message}"


class TemplateError(ValueError):
    """A template that cannot be saved or rendered; the message names the field and line."""

    def __init__(
        self, field: str, problems: Iterable[TemplateProblem], *, known: Iterable[str] = ()
    ) -> None:
        self.field = field
        self.problems = tuple(problems)
        self.line = self.problems[0].line if self.problems else None
        self.known = tuple(sorted(known))
        message = f"{field}, " + "; ".join(str(p) for p in self.problems)
        if self.known:
            message += "; known: " + ", ".join(self.known)
        super().__init__(message)


def _missing(value: object) -> bool:
    """True for values a fallback should replace: undefined, None, empty or blank."""
    if value is None or isinstance(value, jinja2.Undefined):
        return True
    return isinstance(value, str) and not value.strip()


def _default(value: object, default_value: object = "", boolean: bool = False) -> object:
    """Jinja's ``default``, except that empty and blank strings count as missing."""
    if _missing(value) or (boolean and not value):
        return default_value
    return value


def _environment(*, html: bool) -> SandboxedEnvironment:
    env = SandboxedEnvironment(
        autoescape=html,
        keep_trailing_newline=True,  # a body's final newline is part of the message
        undefined=jinja2.ChainableUndefined,
    )
    # No range/lipsum/namespace…: a name outside `allowed` must be reported, not resolved.
    env.globals.clear()
    env.filters["default"] = _default
    env.filters["d"] = _default
    return env


_TEXT_ENV = _environment(html=False)
_HTML_ENV = _environment(html=True)


@dataclass(frozen=True)
class CompiledTemplate:
    """A checked template: its field label, source, and the variables it uses."""

    field: str
    source: str
    html: bool
    variables: frozenset[str]
    _spintax: Spintax = dataclasses.field(repr=False, compare=False)
    _template: jinja2.Template = dataclasses.field(repr=False, compare=False)


def template_variables(custom_fields: Iterable[str] = ()) -> frozenset[str]:
    """Return the names a template may use: lead fields, ``custom_fields`` and sender ones."""
    return LEAD_VARIABLES | SENDER_VARIABLES | frozenset(custom_fields)


def _first_line(ast: nodes.Template, name: str) -> int | None:
    lines = [
        node.lineno for node in ast.find_all(nodes.Name) if node.name == name and node.ctx == "load"
    ]
    return min(lines) if lines else None


def _unknown_problem(name: str, line: int | None, allowed: AbstractSet[str]) -> TemplateProblem:
    message = f"unknown variable '{name}'"
    close = difflib.get_close_matches(name, sorted(allowed), n=1)
    if close:
        message += f" (did you mean '{close[0]}'?)"
    return TemplateProblem(line, message)


def compile_template(
    source: str, *, field: str, allowed: AbstractSet[str], html: bool = False
) -> CompiledTemplate:
    """Parse and check ``source``; raise :class:`TemplateError` naming ``field`` if it is wrong.

    ``field`` labels the template in messages (e.g. "step 2 body_text"); ``html``
    turns on autoescaping, so lead data can never add markup to an HTML body.
    """
    try:
        spintax = parse_spintax(source)
    except SpintaxError as exc:
        problem = f"malformed spintax: {exc.problem} (column {exc.column})"
        raise TemplateError(field, [TemplateProblem(exc.line, problem)]) from exc

    env = _HTML_ENV if html else _TEXT_ENV
    # Each option must hold whole blocks: "{a {% if x %}|b}{% endif %}" parses once
    # translated, but cannot render as spintax-then-Jinja. Checked first because
    # Jinja's message about the option is clearer than about the whole.
    for offset, option in spintax.options(_CHOICES):
        if "{%" not in option:
            continue
        try:
            env.parse(option)
        except jinja2.TemplateSyntaxError as exc:
            line = source.count("\n", 0, offset) + (exc.lineno or 1)
            problem = f"{(exc.message or str(exc)).rstrip('.')}{_HINT_BLOCKS}"
            raise TemplateError(field, [TemplateProblem(line, problem)]) from exc

    # Spintax becomes {% if %} choices inside one Jinja template: one compile per
    # template, the exact text a render will run is what gets checked, and line
    # numbers are unchanged because no newline is added.
    jinja_source = spintax.to_jinja(_CHOICES)
    try:
        ast = env.parse(jinja_source)
        # This runs the code generator, so unknown filters and tests fail here too.
        undeclared = meta.find_undeclared_variables(ast) - {_CHOICES}
    except jinja2.TemplateSyntaxError as exc:
        message = (exc.message or str(exc)).rstrip(".")
        raise TemplateError(field, [TemplateProblem(exc.lineno, message)]) from exc

    problems: list[TemplateProblem] = []
    for node in ast.find_all((nodes.Extends, nodes.Include, nodes.Import, nodes.FromImport)):
        problems.append(TemplateProblem(node.lineno, "templates cannot include or import others"))
    # `self` is resolved by Jinja itself and so never reported as undeclared.
    if _first_line(ast, "self") is not None:
        undeclared.add("self")
    unknown = sorted(undeclared - allowed, key=lambda name: (_first_line(ast, name) or 0, name))
    problems.extend(_unknown_problem(name, _first_line(ast, name), allowed) for name in unknown)
    if problems:
        raise TemplateError(field, problems, known=allowed if unknown else ())

    try:
        template = env.from_string(ast)
    except jinja2.TemplateSyntaxError as exc:  # not expected once the checks above passed
        raise TemplateError(field, [TemplateProblem(exc.lineno, exc.message or str(exc))]) from exc
    return CompiledTemplate(
        field=field,
        source=source,
        html=html,
        variables=frozenset(undeclared),
        _spintax=spintax,
        _template=template,
    )


def render(compiled: CompiledTemplate, context: Mapping[str, str | None], seed: str) -> str:
    """Render ``compiled`` for one message: spintax chosen by ``seed``, then the variables.

    The result equals spinning the source with ``seed`` and rendering that with
    Jinja. ``None`` and absent values render as the empty string.
    """
    values: dict[str, object] = dict.fromkeys(compiled.variables, "")
    for name, value in context.items():
        if value is not None:
            values[name] = value
    values[_CHOICES] = compiled._spintax.choices(seed)
    try:
        return compiled._template.render(values)
    except (jinja2.TemplateError, TypeError, ValueError, ArithmeticError, LookupError) as exc:
        raise TemplateError(
            compiled.field, [TemplateProblem(None, f"cannot render: {exc}")]
        ) from exc
