"""Transport: SMTP submission, OAuth tokens and secrets — the I/O edge that acts."""
