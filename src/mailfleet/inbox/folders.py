"""Which folders of a mailbox the sync reads: INBOX and the Junk folder.

The Junk folder is the one LIST marks ``\\Junk`` (RFC 6154); servers that do not
mark it get the usual names tried in order, at the top level or under INBOX.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from mailfleet.transport.imap_wire import Folder

JUNK_NAMES: Final = (
    "junk",
    "junk email",
    "junk e-mail",
    "spam",
    "[gmail]/spam",
    "[google mail]/spam",
    "bulk mail",
    "junk mail",
)
"""Names tried, case-insensitively, when no folder carries ``\\Junk``."""


class FolderRole(enum.StrEnum):
    """Why a folder is read."""

    INBOX = "inbox"
    JUNK = "junk"


@dataclass(frozen=True, slots=True)
class SyncFolder:
    """A folder to read and its role."""

    name: str
    role: FolderRole


def _selectable(folder: Folder) -> bool:
    return not any(flag.lower() in ("\\noselect", "\\nonexistent") for flag in folder.flags)


def _leaf(folder: Folder) -> str:
    name = folder.name.lower()
    if folder.delimiter and name.startswith("inbox" + folder.delimiter.lower()):
        return name[len("inbox") + len(folder.delimiter) :]
    return name


def junk_folder(folders: Sequence[Folder]) -> str | None:
    """The Junk folder among a LIST result: by ``\\Junk``, else by a common name."""
    usable = [f for f in folders if _selectable(f)]
    for folder in usable:
        if folder.special_use == "\\Junk":
            return folder.name
    by_name = {_leaf(f): f.name for f in usable}
    for name in JUNK_NAMES:
        if name in by_name:
            return by_name[name]
    return None


def sync_folders(folders: Sequence[Folder]) -> list[SyncFolder]:
    """INBOX first, then the Junk folder when the mailbox has one."""
    chosen = [SyncFolder("INBOX", FolderRole.INBOX)]
    junk = junk_folder(folders)
    if junk is not None and junk.upper() != "INBOX":
        chosen.append(SyncFolder(junk, FolderRole.JUNK))
    return chosen
