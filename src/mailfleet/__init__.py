"""mailfleet: a self-hosted cold-email platform that runs a fleet of real mailboxes."""

__version__ = "0.1.0"
