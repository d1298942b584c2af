"""pymap's backend interfaces over the sandbox :class:`MailStore`: the store stays the truth.

pymap's own in-memory backend keeps messages in its own dictionaries; the sandbox
must serve the folders the SMTP server files into, so this module adapts pymap's
``MailboxDataInterface`` to a :class:`~mailfleet.sandbox.mailstore.MailFolder`.
Nothing is copied: each command reads the folder, and what IMAP changes (flags,
MOVE, EXPUNGE, APPEND) is written back through the store. The folder's own UIDs
and UIDVALIDITY are the ones IMAP clients see.

Changes made outside IMAP (a delivery, a simulated prospect) reach selected and
IDLE-ing sessions through the store's change listener; every command also
compares the folder with what it last saw, so no change is missed either way.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Final

from pymap.backend.mailbox import MailboxDataInterface, MailboxSetInterface
from pymap.backend.session import BaseSession
from pymap.concurrent import Event
from pymap.config import IMAPConfig
from pymap.context import subsystem
from pymap.exceptions import NotAllowedError
from pymap.flags import FlagOp
from pymap.interfaces.login import IdentityInterface
from pymap.interfaces.message import CachedMessage
from pymap.listtree import ListTree
from pymap.mailbox import MailboxSnapshot
from pymap.message import BaseLoadedMessage, BaseMessage
from pymap.mime import MessageContent
from pymap.parsing.message import AppendMessage
from pymap.parsing.specials import FetchRequirement, ObjectId
from pymap.parsing.specials.flag import Flag, Seen
from pymap.selected import SelectedMailbox, SelectedSet
from pymap.user import UserMetadata

from mailfleet.clock import Clock
from mailfleet.sandbox.mailstore import INBOX, JUNK, SENT_ITEMS, MailStore, StoredMessage

SPECIAL_USE: Final[dict[str, bytes]] = {
    JUNK: b"Junk",
    SENT_ITEMS: b"Sent",
    "Archive": b"Archive",
    "Deleted Items": b"Trash",
}
"""RFC 6154 attributes (without the backslash) that LIST shows on the sandbox's folders."""

DELIMITER = "/"


class StoreMessage(BaseMessage):
    """One stored message as pymap sees it; the content is parsed on first fetch."""

    __slots__ = ("_raw", "_recent")

    def __init__(
        self,
        uid: int,
        internal_date: datetime,
        permanent_flags: Iterable[Flag],
        *,
        raw: bytes | None = None,
        recent: bool = False,
        expunged: bool = False,
    ) -> None:
        super().__init__(uid, internal_date, permanent_flags, expunged=expunged)
        self._raw = raw
        self._recent = recent

    @classmethod
    def expunged_copy(cls, cached: CachedMessage) -> StoreMessage:
        """The stand-in for a message another session has already removed."""
        return cls(cached.uid, cached.internal_date, cached.permanent_flags, expunged=True)

    @property
    def recent(self) -> bool:
        """Whether no session has claimed this message as ``\\Recent`` yet."""
        return self._recent

    async def load_content(self, requirement: FetchRequirement) -> BaseLoadedMessage:
        content = MessageContent.parse(self._raw) if self._raw is not None else None
        return BaseLoadedMessage(self, requirement, content)


def _flags_of(stored: StoredMessage) -> frozenset[Flag]:
    return frozenset(Flag(flag) for flag in stored.flags)


class StoreFolder(MailboxDataInterface[StoreMessage]):
    """One folder of one address, read live from the store.

    One instance serves every session of the folder (see :class:`StoreFolders`), so
    the ``\\Recent`` bookkeeping and the change event are shared, as IMAP expects.
    """

    def __init__(self, store: MailStore, clock: Clock, address: str, name: str) -> None:
        self._store = store
        self._clock = clock
        self.address = address
        self.name = name
        self._mailbox_id = ObjectId.random_mailbox_id()
        self._selected_set = SelectedSet()
        self._updated: Event = subsystem.get().new_event()
        # Change tracking, in the modification sequences pymap's selected state asks for.
        self._mod_seq = 0
        self._known: dict[int, frozenset[str]] = {}
        self._changed_at: dict[int, int] = {}
        self._expunged_at: dict[int, int] = {}
        self._recent: set[int] = set()

    # -- identity -----------------------------------------------------------------------

    @property
    def mailbox_id(self) -> ObjectId:
        return self._mailbox_id

    @property
    def readonly(self) -> bool:
        return False

    @property
    def uid_validity(self) -> int:
        return self._folder_messages()[0]

    @property
    def selected_set(self) -> SelectedSet:
        return self._selected_set

    def notify(self) -> None:
        """Wake sessions waiting in IDLE: the folder changed."""
        self._updated.set()

    # -- reading the store --------------------------------------------------------------

    def _folder_messages(self) -> tuple[int, int, list[StoredMessage]]:
        folder = self._store.folder(self.address, self.name)
        if folder is None:  # the store never deletes folders; this is only defensive
            folder = self._store.create_folder(self.address, self.name)
        return folder.uid_validity, folder.uid_next, folder.messages

    def _sync(self) -> dict[int, StoredMessage]:
        """Compare the folder with what was last seen and record the differences."""
        current = {m.uid: m for m in self._folder_messages()[2]}
        changed: list[int] = []
        for uid, stored in current.items():
            flags = frozenset(stored.flags)
            previous = self._known.get(uid)
            if previous != flags:
                if previous is None:
                    self._recent.add(uid)
                self._known[uid] = flags
                changed.append(uid)
        gone = [uid for uid in self._known if uid not in current]
        if changed or gone:
            self._mod_seq += 1
            for uid in changed:
                self._changed_at[uid] = self._mod_seq
            for uid in gone:
                del self._known[uid]
                self._changed_at.pop(uid, None)
                self._recent.discard(uid)
                self._expunged_at[uid] = self._mod_seq
        return current

    def _message(self, stored: StoredMessage) -> StoreMessage:
        return StoreMessage(
            stored.uid,
            stored.received_at,
            _flags_of(stored),
            raw=stored.raw,
            recent=stored.uid in self._recent,
        )

    def _find(self, uid: int) -> StoredMessage | None:
        # A folder's messages are always in ascending UID order (UIDs only grow).
        messages = self._folder_messages()[2]
        index = bisect_left(messages, uid, key=lambda m: m.uid)
        if index < len(messages) and messages[index].uid == uid:
            return messages[index]
        return None

    # -- MailboxDataInterface -------------------------------------------------------------

    async def update_selected(
        self, selected: SelectedMailbox, *, wait_on: Event | None = None
    ) -> SelectedMailbox:
        if wait_on is not None:
            self._sync()
            # Only wait when nothing happened since this session last looked.
            if selected.mod_sequence == self._mod_seq:
                await wait_on.or_event(self._updated).wait()
        current = self._sync()
        since = selected.mod_sequence
        selected.mod_sequence = self._mod_seq
        if since is None:
            selected.add_updates([self._message(m) for m in current.values()], [])
        else:
            updated = [
                self._message(current[uid])
                for uid, seq in self._changed_at.items()
                if seq > since and uid in current
            ]
            expunged = [uid for uid, seq in self._expunged_at.items() if seq > since]
            selected.add_updates(updated, expunged)
        return selected

    async def append(self, append_msg: AppendMessage, *, recent: bool = False) -> StoreMessage:
        stored = self._store.append(
            self.address,
            self.name,
            append_msg.literal,
            sender=self.address,
            recipients=(),
            received_at=append_msg.when or self._clock.now(),
            flags=[flag.value.decode("ascii") for flag in append_msg.flag_set],
        )
        self._after_insert(stored.uid, recent)
        return self._message(stored)

    def _after_insert(self, uid: int, recent: bool) -> None:
        self._sync()
        if not recent:
            # The inserting session marks it \Recent for itself; nobody else should.
            self._recent.discard(uid)

    async def copy(self, uid: int, destination: StoreFolder, *, recent: bool = False) -> int | None:
        stored = self._find(uid)
        if stored is None:
            return None
        copied = self._store.append(
            destination.address,
            destination.name,
            stored.raw,
            sender=stored.sender,
            recipients=stored.recipients,
            received_at=stored.received_at,
            flags=stored.flags,
        )
        destination._after_insert(copied.uid, recent)
        return copied.uid

    async def move(self, uid: int, destination: StoreFolder, *, recent: bool = False) -> int | None:
        new_uid = await self.copy(uid, destination, recent=recent)
        if new_uid is not None:
            self._store.remove(self.address, self.name, [uid])
        return new_uid

    async def get(self, uid: int, cached_msg: CachedMessage) -> StoreMessage:
        stored = self._find(uid)
        if stored is None:
            return StoreMessage.expunged_copy(cached_msg)
        return self._message(stored)

    async def update(
        self, uid: int, cached_msg: CachedMessage, flag_set: frozenset[Flag], mode: FlagOp
    ) -> StoreMessage:
        stored = self._find(uid)
        if stored is None:
            return StoreMessage.expunged_copy(cached_msg)
        flags = mode.apply(_flags_of(stored), flag_set)
        self._store.set_flags(
            self.address, self.name, uid, [flag.value.decode("ascii") for flag in flags]
        )
        return self._message(stored)

    async def delete(self, uids: Iterable[int]) -> None:
        self._store.remove(self.address, self.name, uids)

    async def claim_recent(self, selected: SelectedMailbox) -> None:
        current = self._sync()
        for uid in sorted(self._recent):
            if uid in current:
                selected.session_flags.add_recent(uid)
        self._recent.clear()

    async def cleanup(self) -> None:
        return None

    async def snapshot(self) -> MailboxSnapshot:
        current = self._sync()
        uid_validity, uid_next, _ = self._folder_messages()
        unseen = 0
        first_unseen: int | None = None
        for seq, stored in enumerate(current.values(), start=1):
            if Seen not in _flags_of(stored):
                unseen += 1
                if first_unseen is None:
                    first_unseen = seq
        return MailboxSnapshot(
            self.mailbox_id,
            self.readonly,
            uid_validity,
            self.permanent_flags,
            self.session_flags,
            len(current),
            len(self._recent & current.keys()),
            unseen,
            first_unseen,
            uid_next,
        )


class StoreFolders:
    """The folder adapters of a store, one per (address, folder), kept live by its listener."""

    def __init__(self, store: MailStore, clock: Clock) -> None:
        self.store = store
        self.clock = clock
        self._folders: dict[tuple[str, str], StoreFolder] = {}
        store.add_listener(self._on_change)

    def folder(self, address: str, name: str) -> StoreFolder:
        """The adapter of folder ``name`` of ``address`` (created on first use)."""
        key = (address, name)
        adapter = self._folders.get(key)
        if adapter is None:
            adapter = StoreFolder(self.store, self.clock, address, name)
            self._folders[key] = adapter
        return adapter

    def _on_change(self, address: str, folder: str) -> None:
        adapter = self._folders.get((address, folder))
        if adapter is not None:
            adapter.notify()


class StoreMailboxSet(MailboxSetInterface[StoreFolder]):
    """The folders of one address: INBOX, Junk, Sent Items and any created over IMAP."""

    def __init__(self, folders: StoreFolders, address: str) -> None:
        self._folders = folders
        self._address = address

    @property
    def delimiter(self) -> str:
        return DELIMITER

    def _names(self) -> list[str]:
        return [name for name in self._folders.store.folders(self._address) if name != INBOX]

    async def set_subscribed(self, name: str, subscribed: bool) -> None:
        return None  # every folder counts as subscribed

    async def list_subscribed(self) -> ListTree:
        return await self.list_mailboxes()

    async def list_mailboxes(self) -> ListTree:
        return ListTree(self.delimiter).update(INBOX, *self._names())

    async def get_mailbox(self, name: str) -> StoreFolder:
        if name.upper() == INBOX:
            name = INBOX
        if self._folders.store.folder(self._address, name) is None:
            raise KeyError(name)
        return self._folders.folder(self._address, name)

    async def add_mailbox(self, name: str) -> ObjectId:
        if name.upper() == INBOX or self._folders.store.folder(self._address, name) is not None:
            raise ValueError(name)
        self._folders.store.create_folder(self._address, name)
        return self._folders.folder(self._address, name).mailbox_id

    async def delete_mailbox(self, name: str) -> None:
        await self.get_mailbox(name)  # KeyError for a folder that does not exist
        raise NotAllowedError("The sandbox does not delete folders.")

    async def rename_mailbox(self, before: str, after: str) -> None:
        await self.get_mailbox(before)
        raise NotAllowedError("The sandbox does not rename folders.")


class StoreSession(BaseSession[StoreMessage]):
    """An authenticated IMAP session of one address."""

    def __init__(self, owner: str, config: IMAPConfig, mailbox_set: StoreMailboxSet) -> None:
        super().__init__(owner)
        self._config = config
        self._mailbox_set = mailbox_set

    @property
    def config(self) -> IMAPConfig:
        return self._config

    @property
    def mailbox_set(self) -> StoreMailboxSet:
        return self._mailbox_set

    async def list_mailboxes(
        self,
        ref_name: str,
        filter_: str,
        subscribed: bool = False,
        selected: SelectedMailbox | None = None,
    ) -> tuple[Iterable[tuple[str, str | None, Sequence[bytes]]], SelectedMailbox | None]:
        """LIST as pymap answers it, plus the SPECIAL-USE attributes Exchange shows."""
        entries, updates = await super().list_mailboxes(ref_name, filter_, subscribed, selected)
        marked = [
            (name, delimiter, [*attrs, SPECIAL_USE[name]] if name in SPECIAL_USE else attrs)
            for name, delimiter, attrs in entries
        ]
        return marked, updates


class StoreIdentity(IdentityInterface):
    """An address that has proved who it is; it opens sessions on its folders."""

    def __init__(self, address: str, config: IMAPConfig, folders: StoreFolders) -> None:
        self._address = address
        self._config = config
        self._folders = folders

    @property
    def name(self) -> str:
        return self._address

    @property
    def roles(self) -> frozenset[str]:
        return frozenset()

    @asynccontextmanager
    async def new_session(self) -> AsyncIterator[StoreSession]:
        mailbox_set = StoreMailboxSet(self._folders, self._address)
        yield StoreSession(self._address, self._config, mailbox_set)

    async def new_token(self, *, expiration: datetime | None = None) -> str | None:
        return None

    async def get(self) -> UserMetadata:
        return UserMetadata(self._config, self._address)

    async def set(self, metadata: UserMetadata) -> int | None:
        raise NotAllowedError("Mailboxes are managed by the sandbox, not over IMAP.")

    async def delete(self) -> None:
        raise NotAllowedError("Mailboxes are managed by the sandbox, not over IMAP.")
