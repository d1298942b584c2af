"""HTTP interfaces (no business rules): the Prometheus endpoint, later the API and dashboard."""

from mailfleet.api.app import create_app

__all__ = ["create_app"]
