"""Settings from the environment and an optional TOML file.

Precedence, highest first: constructor arguments, ``MAILFLEET_*`` environment
variables, the TOML file (``MAILFLEET_CONFIG``, else ``$MAILFLEET_HOME/mailfleet.toml``),
defaults. ``MAILFLEET_HOME`` is the data folder; the SQLite database, the key
file and the logs live there unless configured otherwise.
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from mailfleet.clock import Clock, FlowingClock, SystemClock
from mailfleet.warmup.config import WarmupConfig
from mailfleet.warmup.marker import WarmupMarker

DEFAULT_HOME = Path("~/.local/share/mailfleet")


class DataFolderError(Exception):
    """The data folder cannot be created or written."""


def _default_home() -> Path:
    return Path(os.environ.get("MAILFLEET_HOME") or DEFAULT_HOME).expanduser()


def _toml_path() -> Path:
    explicit = os.environ.get("MAILFLEET_CONFIG")
    if explicit:
        return Path(explicit).expanduser()
    return _default_home() / "mailfleet.toml"


def parse_bind(value: str, where: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:PORT`` for IPv6) as a pair; ValueError naming ``where``."""
    host, sep, port = value.strip().rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"{where}: {value!r} is not HOST:PORT (e.g. 127.0.0.1:8025)")
    return host, int(port)


class Settings(BaseSettings):
    """Everything an installation can configure."""

    model_config = SettingsConfigDict(env_prefix="MAILFLEET_", extra="ignore")

    home: Path = Field(default_factory=_default_home)
    database_url: str | None = None
    secret_key: SecretStr | None = None
    key_file: Path | None = None
    log_file: Path | None = None
    log_level: str = "INFO"
    # Public base URL of the public endpoint (behind the user's TLS reverse proxy), used in
    # signed one-click unsubscribe links; public_bind is where ``run`` listens for it.
    public_url: str = "http://127.0.0.1:8025"
    public_bind: str = "127.0.0.1:8025"
    dns_nameserver: str | None = None
    """``HOST[:PORT]`` of the nameserver for DNS checks and the launch gate (None: system)."""
    dns_timeout: float = 3.0
    # The installation's warmup marker (see mailfleet.warmup.marker): the token prefix
    # in the body and the header that carries it. Peers and the inbox sync find warmup
    # mail by it; change it only with every peer of the installation.
    # A rehearsal clock (see mailfleet.clock.FlowingClock): virtual time flowing this many
    # times faster than real time from the origin, the same in every process given both.
    clock_speed: float | None = Field(default=None, gt=0)
    clock_origin: datetime | None = None
    warmup_marker_prefix: str = "mfwu-"
    warmup_marker_header: str = "X-Entity-Ref-ID"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Environment over TOML file over defaults."""
        toml = TomlConfigSettingsSource(settings_cls, toml_file=_toml_path())
        return (init_settings, env_settings, toml)

    def model_post_init(self, __context: Any) -> None:
        """Resolve paths that default to places inside the data folder; check the marker."""
        self.home = self.home.expanduser()
        try:
            WarmupMarker(self.warmup_marker_prefix, self.warmup_marker_header)
        except ValueError as exc:
            raise ValueError(f"MAILFLEET_WARMUP_MARKER_PREFIX / _HEADER: {exc}") from None
        parse_bind(self.public_bind, "MAILFLEET_PUBLIC_BIND")
        if self.clock_speed is not None and self.clock_origin is None:
            raise ValueError(
                "MAILFLEET_CLOCK_SPEED needs MAILFLEET_CLOCK_ORIGIN (an ISO instant with its "
                "offset) so that every process reads the same time"
            )
        if self.clock_origin is not None and self.clock_origin.tzinfo is None:
            raise ValueError("MAILFLEET_CLOCK_ORIGIN needs a UTC offset, e.g. 2026-03-02T08:00Z")

    def clock(self) -> Clock:
        """The wall clock, or the rehearsal clock ``MAILFLEET_CLOCK_SPEED`` asks for."""
        if self.clock_speed is None or self.clock_origin is None:
            return SystemClock()
        return FlowingClock(self.clock_origin, self.clock_speed)

    def warmup_config(self) -> WarmupConfig:
        """The installation's warmup: its marker, the default ramp and peer behaviour."""
        return WarmupConfig(
            marker=WarmupMarker(self.warmup_marker_prefix, self.warmup_marker_header)
        )

    @property
    def resolved_database_url(self) -> str:
        """The SQLAlchemy async URL: the configured one, or SQLite in the data folder."""
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{self.home / 'mailfleet.db'}"

    @property
    def resolved_key_file(self) -> Path:
        """Where the encryption key lives when no key is given in the environment."""
        return (self.key_file or self.home / "secret.key").expanduser()

    @property
    def resolved_log_file(self) -> Path:
        """Where logs are written."""
        return (self.log_file or self.home / "logs" / "mailfleet.log").expanduser()

    def ensure_home(self) -> Path:
        """Create the data folder if needed and prove it is writable.

        Raises :class:`DataFolderError` naming the folder and the reason.
        """
        home = self.home
        try:
            home.mkdir(parents=True, exist_ok=True)
            (home / "logs").mkdir(exist_ok=True)
            probe = home / ".write-test"
            probe.write_text("ok")
            probe.unlink()
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise DataFolderError(
                f"cannot use data folder {home}: {reason}. "
                "Set MAILFLEET_HOME to a folder you can write."
            ) from exc
        return home
