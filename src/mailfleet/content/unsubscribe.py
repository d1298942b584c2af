"""Signed unsubscribe tokens: the one-click link and the ``mailto:`` subject carry one.

A token is ``{workspace}.{lead}.{mac}``: the ids it was signed for and the first 32
hex digits of an HMAC-SHA256 over ``{workspace}.{lead}`` with a key derived for
unsubscribe links. It holds no address, so a link found in a forwarded message
names nobody, and it never expires: a person may click an old message's link.

Pure: keys are passed in. :func:`verify` takes every current key, newest first, so a
link signed before ``mailfleet keys rotate`` still works until the old key is dropped.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

MAC_LENGTH = 32
SUBJECT_WORD = "unsubscribe"
_TOKEN = re.compile(r"^(\d{1,18})\.(\d{1,18})\.([0-9a-f]{32})$")
_IN_SUBJECT = re.compile(r"(?<![\w.])(\d{1,18}\.\d{1,18}\.[0-9a-f]{32})(?![\w.])")


class TokenError(ValueError):
    """A token that is malformed or whose signature no current key made."""


@dataclass(frozen=True, slots=True)
class TokenClaim:
    """Whom a verified token was signed for."""

    workspace_id: int
    lead_id: int


def _mac(key: bytes, workspace_id: int, lead_id: int) -> str:
    payload = f"{workspace_id}.{lead_id}".encode()
    return hmac.new(key, payload, hashlib.sha256).hexdigest()[:MAC_LENGTH]


def sign(key: bytes, workspace_id: int, lead_id: int) -> str:
    """The token for a lead of a workspace, signed with ``key``."""
    return f"{workspace_id}.{lead_id}.{_mac(key, workspace_id, lead_id)}"


def verify(keys: Sequence[bytes], token: str) -> TokenClaim:
    """The claim of ``token`` when one of ``keys`` signed it; :class:`TokenError` otherwise."""
    found = _TOKEN.match(token.strip()) if len(token) <= 128 else None
    if found is None:
        raise TokenError("the link is malformed: it is not a mailfleet unsubscribe token")
    workspace_id, lead_id, mac = int(found[1]), int(found[2]), found[3]
    for key in keys:
        if hmac.compare_digest(mac, _mac(key, workspace_id, lead_id)):
            return TokenClaim(workspace_id, lead_id)
    raise TokenError("the link's signature does not match: it was altered or never ours")


def link(public_url: str, token: str) -> str:
    """The one-click URL for ``token`` under the public endpoint's base URL."""
    return f"{public_url.rstrip('/')}/unsubscribe/{token}"


def mailto(address: str, token: str) -> str:
    """The ``mailto:`` alternative: a message to the sending mailbox, the token in its subject."""
    return f"mailto:{address}?subject={quote(f'{SUBJECT_WORD} {token}')}"


def token_in_subject(subject: str) -> str | None:
    """The token an answer to the ``mailto:`` link carries in its subject, if any."""
    if SUBJECT_WORD not in subject.lower():
        return None
    found = _IN_SUBJECT.search(subject)
    return found[1] if found else None


def is_loopback_url(url: str) -> bool:
    """Whether ``url`` points at this machine (``localhost``, 127.0.0.0/8, ``::1``)."""
    host = (urlsplit(url).hostname or "").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def public_url_problem(url: str) -> str | None:
    """Why links under ``url`` would not work for real recipients, or None when they would."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return None
    if parts.scheme == "http" and is_loopback_url(url):
        return (
            f"the public URL {url} is a loopback address: recipients cannot reach it; "
            "set MAILFLEET_PUBLIC_URL to the https:// address of your reverse proxy"
        )
    return f"the public URL {url!r} is not an absolute https:// URL (MAILFLEET_PUBLIC_URL)"
