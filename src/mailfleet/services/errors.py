"""The error every service raises for a request it refuses: a sentence for the user.

Interfaces show it as it is (the CLI as ``mailfleet: <message>`` with exit code 2, the
API in its error envelope); it always names what was asked and why it cannot be done.
"""

from __future__ import annotations


class ServiceError(Exception):
    """A refused request: the message says what and why, and what to do instead."""
