"""Deliverability policy: health scores and auto-pause decisions (pure; no I/O)."""
