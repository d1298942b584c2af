"""``python -m mailfleet``."""

from mailfleet.cli.main import app

app()
