"""Message content: spintax, templates with fallbacks, MIME building and threading.

Everything here is pure: no clock, no randomness, no I/O. Callers pass the
seed, the date and the Message-ID entropy.
"""

from mailfleet.content.mime import (
    MAX_REFERENCES,
    SEND_POLICY,
    HeaderInjectionError,
    MessageBuildError,
    OutgoingMessage,
    build_message,
    make_message_id,
    reply_subject,
    thread_references,
)
from mailfleet.content.spintax import Spintax, SpintaxError, parse_spintax, spin
from mailfleet.content.templates import (
    LEAD_VARIABLES,
    SENDER_VARIABLES,
    CompiledTemplate,
    TemplateError,
    TemplateProblem,
    compile_template,
    render,
    template_variables,
)

__all__ = [
    "LEAD_VARIABLES",
    "MAX_REFERENCES",
    "SENDER_VARIABLES",
    "SEND_POLICY",
    "CompiledTemplate",
    "HeaderInjectionError",
    "MessageBuildError",
    "OutgoingMessage",
    "Spintax",
    "SpintaxError",
    "TemplateError",
    "TemplateProblem",
    "build_message",
    "compile_template",
    "make_message_id",
    "parse_spintax",
    "render",
    "reply_subject",
    "spin",
    "template_variables",
    "thread_references",
]
