"""Mail the sandbox accepted, kept per recipient mailbox and folder.

Each address (lower-cased) has folders with IMAP-like bookkeeping (UIDVALIDITY,
next UID) so that a later IMAP front end can serve them unchanged. The submission
server files a copy of each message in every recipient's INBOX and one in the
sender's Sent Items, as Microsoft 365 does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime

from mailfleet.sandbox.directory import normalize_address
from mailfleet.sandbox.headers import same_message_id, summarize_headers

INBOX = "INBOX"
JUNK = "Junk"
SENT_ITEMS = "Sent Items"
DEFAULT_FOLDERS = (INBOX, JUNK, SENT_ITEMS)

Listener = Callable[[str, str], None]
"""Called with ``(address, folder)`` after that folder's messages or flags changed."""


@dataclass(slots=True)
class StoredMessage:
    """One message in one folder; ``flags`` are IMAP system flags such as ``\\Seen``."""

    uid: int
    raw: bytes
    sender: str
    recipients: tuple[str, ...]
    received_at: datetime
    message_id: str | None
    flags: set[str] = field(default_factory=set)


@dataclass(slots=True)
class MailFolder:
    """A folder of one mailbox; UIDs only grow, as IMAP requires."""

    name: str
    uid_validity: int
    uid_next: int = 1
    messages: list[StoredMessage] = field(default_factory=list)


class MailStore:
    """Folders of messages per address, all in memory."""

    def __init__(self) -> None:
        self._folders: dict[str, dict[str, MailFolder]] = {}
        # A store-wide counter keeps every folder's UIDVALIDITY distinct without a clock.
        self._next_uid_validity = 1
        self._listeners: list[Listener] = []

    def ensure_mailbox(self, address: str) -> None:
        """Create the default folders (INBOX, Junk, Sent Items) of ``address`` if missing."""
        for name in DEFAULT_FOLDERS:
            self.create_folder(address, name)

    def create_folder(self, address: str, name: str) -> MailFolder:
        """Return folder ``name`` of ``address``, creating it (and the mailbox) when new."""
        folders = self._folders.setdefault(normalize_address(address), {})
        folder = folders.get(name)
        if folder is None:
            folder = MailFolder(name=name, uid_validity=self._next_uid_validity)
            self._next_uid_validity += 1
            folders[name] = folder
        return folder

    def folder(self, address: str, name: str = INBOX) -> MailFolder | None:
        """Folder ``name`` of ``address``, or None when it does not exist."""
        return self._folders.get(normalize_address(address), {}).get(name)

    def folders(self, address: str) -> list[str]:
        """Names of the folders of ``address``."""
        return list(self._folders.get(normalize_address(address), {}))

    def addresses(self) -> list[str]:
        """Every address that has folders."""
        return list(self._folders)

    def append(
        self,
        address: str,
        folder: str,
        raw: bytes,
        *,
        sender: str,
        recipients: Iterable[str],
        received_at: datetime,
        flags: Iterable[str] = (),
    ) -> StoredMessage:
        """File ``raw`` in ``folder`` of ``address`` under the next UID."""
        self.ensure_mailbox(address)
        box = self.create_folder(address, folder)
        message = StoredMessage(
            uid=box.uid_next,
            raw=raw,
            sender=normalize_address(sender),
            recipients=tuple(normalize_address(r) for r in recipients),
            received_at=received_at,
            message_id=summarize_headers(raw).message_id,
            flags=set(flags),
        )
        box.uid_next += 1
        box.messages.append(message)
        self._changed(address, folder)
        return message

    def messages(self, address: str, folder: str = INBOX) -> list[StoredMessage]:
        """Messages in ``folder`` of ``address``, oldest first (empty when none)."""
        box = self.folder(address, folder)
        return list(box.messages) if box is not None else []

    def find_by_message_id(
        self, address: str, folder: str, message_id: str
    ) -> StoredMessage | None:
        """The message with ``message_id`` (angle brackets optional) in that folder, or None."""
        for message in self.messages(address, folder):
            if message.message_id is not None and same_message_id(message.message_id, message_id):
                return message
        return None

    def count(self, address: str, folder: str = INBOX) -> int:
        """How many messages ``folder`` of ``address`` holds."""
        box = self.folder(address, folder)
        return len(box.messages) if box is not None else 0

    # -- changes, for front ends that serve the store live (IMAP IDLE) -------------------

    def add_listener(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener(address, folder)`` after every change; returns the unsubscriber."""
        self._listeners.append(listener)

        def remove() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return remove

    def _changed(self, address: str, folder: str) -> None:
        key = normalize_address(address)
        for listener in list(self._listeners):
            listener(key, folder)

    def remove(self, address: str, folder: str, uids: Iterable[int]) -> list[StoredMessage]:
        """Take the messages with ``uids`` out of ``folder`` (as IMAP EXPUNGE); return them."""
        box = self.folder(address, folder)
        wanted = set(uids)
        if box is None or not wanted:
            return []
        removed = [m for m in box.messages if m.uid in wanted]
        if removed:
            box.messages = [m for m in box.messages if m.uid not in wanted]
            self._changed(address, folder)
        return removed

    def set_flags(
        self, address: str, folder: str, uid: int, flags: Iterable[str]
    ) -> StoredMessage | None:
        """Replace the flags of message ``uid`` in ``folder``; None when it is not there."""
        box = self.folder(address, folder)
        message = next((m for m in box.messages if m.uid == uid), None) if box else None
        if message is None:
            return None
        new_flags = set(flags)
        if new_flags != message.flags:
            message.flags = new_flags
            self._changed(address, folder)
        return message
