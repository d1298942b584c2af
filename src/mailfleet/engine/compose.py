"""Compose the message for one step of one enrollment, deterministically.

The same enrollment and step always render the same text (spintax is seeded)
and the same A/B/n variant (chosen by weight from the same seed), so a retry
sends what the first attempt would have.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from mailfleet.campaigns import choose_variant
from mailfleet.content import (
    LEAD_VARIABLES,
    CompiledTemplate,
    OutgoingMessage,
    build_message,
    compile_template,
    make_message_id,
    render,
    reply_subject,
    thread_references,
    unsubscribe,
)
from mailfleet.store import Campaign, Enrollment, Lead, Mailbox, Step

LEAD_COLUMNS = tuple(sorted(LEAD_VARIABLES))


@dataclass(frozen=True, slots=True)
class Composed:
    """A message ready for the wire plus what the store records about it."""

    message_id: str
    subject: str
    raw: bytes
    in_reply_to: str | None
    references: list[str]
    variant: str | None = None  # the A/B/n variant's name, when the step has variants


@dataclass(frozen=True, slots=True)
class StepContent:
    """The subject, body and html one lead gets for one step (its variant's, if any)."""

    variant: str | None
    subject: str
    body: str
    html: str | None


def step_content(step: Step, seed: str) -> StepContent:
    """The content of ``step`` for the lead ``seed`` names: a weighted, stable variant choice."""
    variants = list((step.variants or {}).get("variants") or [])
    if not variants:
        return StepContent(None, step.subject, step.body_text, step.body_html)
    chosen = variants[choose_variant([float(v.get("weight", 1)) for v in variants], seed)]
    return StepContent(
        str(chosen["name"]),
        str(chosen.get("subject", step.subject)),
        str(chosen.get("body", step.body_text)),
        chosen.get("html", step.body_html),
    )


class Composer:
    """Renders steps; compiled templates are cached per step."""

    def __init__(self, public_url: str, unsubscribe_key: bytes) -> None:
        self._public_url = public_url.rstrip("/")
        self._key = unsubscribe_key
        self._templates: dict[tuple[int, str | None, str], CompiledTemplate] = {}

    def _template(
        self, step: Step, variant: str | None, field: str, source: str, allowed: set[str]
    ) -> CompiledTemplate:
        key = (step.id, variant, field)
        if key not in self._templates:
            where = f"step {step.position}" + (f" variant {variant}" if variant else "")
            self._templates[key] = compile_template(
                source, field=f"{where} {field}", allowed=allowed, html=field == "html"
            )
        return self._templates[key]

    def unsubscribe_token(self, workspace_id: int, lead_id: int) -> str:
        """The signed unsubscribe token of a lead (see :mod:`mailfleet.content.unsubscribe`)."""
        return unsubscribe.sign(self._key, workspace_id, lead_id)

    def unsubscribe_url(self, workspace_id: int, lead_id: int) -> str:
        """A signed one-click unsubscribe link for a lead."""
        return unsubscribe.link(self._public_url, self.unsubscribe_token(workspace_id, lead_id))

    @staticmethod
    def new_message_id(mailbox: Mailbox) -> str:
        """A fresh Message-ID on the sending mailbox's domain."""
        return make_message_id(mailbox.address.rpartition("@")[2], uuid.uuid4().hex)

    def compose(
        self,
        *,
        campaign: Campaign,
        step: Step,
        enrollment: Enrollment,
        lead: Lead,
        mailbox: Mailbox,
        message_id: str,
        at: datetime,
    ) -> Composed:
        """Render ``step`` for ``lead`` from ``mailbox`` with a Message-ID chosen earlier."""
        context: dict[str, str | None] = {name: getattr(lead, name) for name in LEAD_COLUMNS}
        context.update({k: None if v is None else str(v) for k, v in (lead.fields or {}).items()})
        token = self.unsubscribe_token(lead.workspace_id, lead.id)
        unsubscribe_link = unsubscribe.link(self._public_url, token)
        context.update(
            sender_name=mailbox.display_name,
            sender_first_name=mailbox.display_name.split(" ")[0] if mailbox.display_name else "",
            sender_email=mailbox.address,
            unsubscribe_url=unsubscribe_link,
        )
        # Templates were checked when the campaign was saved; allow what it declared.
        allowed = set(context) | set((campaign.settings or {}).get("fields", []))
        seed = f"{campaign.id}:{lead.id}:{step.position}"
        content = step_content(step, seed)
        name = content.variant
        threaded = step.position > 1 and step.threaded and enrollment.last_message_id is not None
        if threaded and not content.subject.strip():
            subject = reply_subject(enrollment.thread_subject or "")
        else:
            where, opening = step, content
            if not content.subject.strip() and campaign.steps:
                # A follow-up with no thread to join (its first step was skipped): it opens
                # the conversation with the first step's subject.
                where = campaign.steps[0]
                opening = step_content(where, seed)
            compiled = self._template(where, opening.variant, "subject", opening.subject, allowed)
            subject = render(compiled, context, seed)
            if threaded:
                subject = reply_subject(subject)
        text = render(self._template(step, name, "body", content.body, allowed), context, seed)
        html = None
        if content.html:
            html = render(self._template(step, name, "html", content.html, allowed), context, seed)
        in_reply_to = enrollment.last_message_id if threaded else None
        references = (
            thread_references(list(enrollment.references or []), enrollment.last_message_id or "")
            if threaded
            else []
        )
        lead_name = " ".join(p for p in (lead.first_name, lead.last_name) if p) or None
        message = build_message(
            OutgoingMessage(
                from_address=mailbox.address,
                from_name=mailbox.display_name or None,
                to_address=lead.email,
                to_name=lead_name,
                subject=subject,
                text=text,
                html=html,
                message_id=message_id,
                date=at,
                in_reply_to=in_reply_to,
                references=references,
                unsubscribe_url=unsubscribe_link,
                unsubscribe_mailto=unsubscribe.mailto(mailbox.address, token),
            )
        )
        return Composed(message_id, subject, bytes(message), in_reply_to, references, name)
