"""The ``mailfleet`` command line (Typer + Rich); no business rules live here."""
