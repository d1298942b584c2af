"""Pure inbound policy: which folders to read, how a message ties to a thread, what it means.

The sync and its database writes live in :mod:`mailfleet.engine.inbox`; the
classifier that reads a message is :mod:`mailfleet.inbound`.
"""

from mailfleet.inbox.decisions import Decision, InboxPolicy, decide, resume_at
from mailfleet.inbox.folders import FolderRole, SyncFolder, junk_folder, sync_folders
from mailfleet.inbox.threads import candidate_ids, dedupe_key, message_id_key, subject_key

__all__ = [
    "Decision",
    "FolderRole",
    "InboxPolicy",
    "SyncFolder",
    "candidate_ids",
    "decide",
    "dedupe_key",
    "junk_folder",
    "message_id_key",
    "resume_at",
    "subject_key",
    "sync_folders",
]
