"""Environment-driven configuration with errors that name the variable.

django-environ does the parsing (URLs, lists, booleans, the optional ``.env`` file); this wrapper
adds what a shop needs at start-up: every problem is collected, and :meth:`Config.finish` raises
one :class:`ImproperlyConfigured` that lists each bad or missing variable with what was expected,
instead of a bare traceback from deep inside Django.
"""

from __future__ import annotations

import base64
import binascii
import builtins
import ipaddress
import os
import re
from decimal import Decimal, InvalidOperation
from pathlib import Path
from urllib.parse import urlsplit

import environ
from django.core.exceptions import ImproperlyConfigured

_DB_SCHEMES = {"postgres", "postgresql", "pgsql", "psql", "sqlite"}
# The only EMAIL_URL backend that actually delivers. The others print every message (card codes of
# delivery e-mails included) into the logs, keep it in memory, write it to a local file or drop it.
_SENDING_EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"


class ConfigError(ImproperlyConfigured):
    """Raised once, at the end of settings, listing every configuration problem."""

    def __init__(self, problems: list[builtins.str]):
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"Kameng cannot start, the configuration is wrong:\n{lines}")


class Config:
    def __init__(self, env_file: Path | None = None):
        self._env = environ.Env()
        if env_file is not None and env_file.exists() and "KAMENG_IGNORE_ENV_FILE" not in os.environ:
            environ.Env.read_env(str(env_file), overwrite=False)
        self.problems: list[builtins.str] = []

    # -- plain values ---------------------------------------------------------------------
    def _raw(self, name: builtins.str) -> builtins.str | None:
        value = os.environ.get(name)
        return None if value is None or value.strip() == "" else value.strip()

    def _parse(self, name: builtins.str, default, parse, expected: builtins.str):
        raw = self._raw(name)
        if raw is None:
            return default
        try:
            return parse(raw)
        except (ValueError, TypeError, InvalidOperation, KeyError) as exc:
            self.problems.append(f"{name}={raw!r} is not valid: expected {expected} ({exc})")
            return default

    def str(self, name: builtins.str, *, default: builtins.str = "") -> builtins.str:
        return self._parse(name, default, lambda v: v, "a string")

    def bool(self, name: builtins.str, *, default: builtins.bool) -> builtins.bool:
        def parse(v: builtins.str) -> builtins.bool:
            lowered = v.lower()
            if lowered in {"1", "true", "yes", "on"}:
                return True
            if lowered in {"0", "false", "no", "off"}:
                return False
            raise ValueError("not a boolean")

        return self._parse(name, default, parse, "true or false")

    def int(self, name: builtins.str, *, default: builtins.int) -> builtins.int:
        return self._parse(name, default, int, "an integer")

    def list(self, name: builtins.str, *, default: builtins.list) -> builtins.list:
        return self._parse(name, default, lambda v: [p.strip() for p in v.split(",") if p.strip()], "a list")

    def networks(self, name: builtins.str, *, default: list[builtins.str]) -> builtins.list:
        """IP addresses and CIDR networks (``10.0.0.0/8,::1``), or ``none`` for an empty list."""

        def parse(v: builtins.str) -> builtins.list:
            if v.lower() == "none":
                return []
            return [ipaddress.ip_network(p.strip(), strict=False) for p in v.split(",") if p.strip()]

        return self._parse(name, parse(",".join(default)), parse, "addresses or networks such as 10.0.0.0/8,::1")

    def request_rate(self, name: builtins.str, *, default: builtins.str) -> builtins.str:
        """A rate limit as django-ratelimit reads it: ``30/m`` (per second, minute, hour or day)."""

        def parse(v: builtins.str) -> builtins.str:
            if not re.fullmatch(r"[1-9]\d*/\d*[smhd]", v):
                raise ValueError("a count and a period, e.g. 30/m or 100/5m")
            return v

        return self._parse(name, default, parse, "a rate such as 30/m")

    def failure_rates(self, name: builtins.str, *, default: builtins.str) -> builtins.str:
        """Limits as django-allauth writes them (kameng/limits.py): ``10/m/ip,5/15m/key``."""

        def parse(v: builtins.str) -> builtins.str:
            rate = r"[1-9]\d*/\d*[smhd]/(ip|key)"
            if not re.fullmatch(rf"{rate}(,{rate})*", v.replace(" ", "")):
                raise ValueError("counts, periods and ip or key, e.g. 10/m/ip,5/15m/key")
            return v.replace(" ", "")

        return self._parse(name, default, parse, "rates such as 10/m/ip,5/15m/key")

    def decimal_rate(self, name: builtins.str, *, default: builtins.str) -> Decimal:
        def parse(v: builtins.str) -> Decimal:
            rate = Decimal(v)
            if not Decimal("0") <= rate < Decimal("1"):
                raise ValueError("must be at least 0 and below 1, e.g. 0.10 for 10%")
            return rate

        return self._parse(name, Decimal(default), parse, "a fraction such as 0.10")

    def db_url(self, name: builtins.str, *, default: builtins.str) -> builtins.dict:
        raw = self._raw(name) or default

        def parse(v: builtins.str) -> builtins.dict:
            scheme = urlsplit(v).scheme
            if scheme not in _DB_SCHEMES:
                raise ValueError(f"unsupported scheme {scheme or '(none)'!r}")
            config = environ.Env.db_url_config(v)
            if config["ENGINE"].endswith("postgresql") and not config.get("NAME"):
                raise ValueError("no database name after the host")
            return config

        try:
            return parse(raw)
        except (ValueError, TypeError, KeyError) as exc:
            self.problems.append(
                f"{name} is not a usable database URL ({exc}): expected "
                "postgres://USER:PASSWORD@HOST:PORT/NAME or sqlite:///PATH"
            )
            return environ.Env.db_url_config("sqlite://:memory:")

    def redis_url(self, name: builtins.str, *, default: builtins.str) -> builtins.str:
        def parse(v: builtins.str) -> builtins.str:
            parts = urlsplit(v)
            if parts.scheme not in {"redis", "rediss", "unix"}:
                raise ValueError(f"unsupported scheme {parts.scheme or '(none)'!r}")
            if parts.scheme != "unix" and not parts.hostname:
                raise ValueError("no host")
            parts.port  # noqa: B018 - raises ValueError on a malformed port
            return v

        return self._parse(name, default, parse, "redis://HOST:PORT/DB")

    def email_url(self, name: builtins.str, *, default: builtins.str) -> builtins.dict:
        raw = self._raw(name) or default
        try:
            return environ.Env.email_url_config(raw)
        except (ValueError, KeyError) as exc:
            self.problems.append(f"{name} is not a usable e-mail URL ({exc}): expected smtp+tls://USER:PASS@HOST:587")
            return environ.Env.email_url_config("consolemail://")

    def fernet_keys(self, name: builtins.str, *, default: builtins.list) -> builtins.list:
        def parse(v: builtins.str) -> builtins.list:
            keys = [p.strip() for p in v.split(",") if p.strip()]
            for position, key in enumerate(keys, 1):
                try:
                    if len(base64.urlsafe_b64decode(key.encode())) != 32:
                        raise ValueError
                except (binascii.Error, ValueError):
                    raise ValueError(f"key #{position} is not a 32-byte url-safe base64 Fernet key") from None
            return keys

        return self._parse(name, default, parse, "comma-separated Fernet keys, newest first")

    def site_url(self, name: builtins.str, *, served_name: builtins.str, default: builtins.str) -> builtins.str:
        """The public address: ``name`` if set (environment, then .env), else the address this run
        serves on (``served_name``: ``HOST:PORT``, which ``make run`` passes), else ``default``."""
        if self._raw(name) is not None:
            return self.str(name, default=default)
        served = self._raw(served_name)
        if served is None:
            return default
        host, _colon, port = served.rpartition(":")
        # Listening on every interface (0.0.0.0, ::): links go to this machine.
        host = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1", "[::]": "::1"}.get(host, host)  # noqa: S104
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        if not port.isdigit():
            self.problems.append(f"{served_name}={served!r} is not valid: expected HOST:PORT")
            return default
        return f"http://{host}:{port}"

    # -- required in production ---------------------------------------------------------------
    def required_when(self, flag: builtins.bool) -> _Required:
        return _Required(self, flag)

    def finish(self) -> None:
        if self.problems:
            raise ConfigError(self.problems)


class _Required:
    """Same parsers, but in production a missing variable is an error, not a default."""

    def __init__(self, config: Config, production: builtins.bool):
        self._config = config
        self._production = production

    def _missing(self, name: builtins.str) -> builtins.bool:
        if self._production and self._config._raw(name) is None:
            self._config.problems.append(f"{name} is required when DEBUG is off")
            return True
        return False

    def str(self, name: builtins.str, *, embedded_default: builtins.str, min_length: builtins.int = 0) -> builtins.str:
        if self._missing(name):
            return embedded_default
        value = self._config.str(name, default=embedded_default)
        if self._production and len(value) < min_length:
            self._config.problems.append(f"{name} is too short: use at least {min_length} random characters")
        return value

    def list(self, name: builtins.str, *, embedded_default: builtins.list) -> builtins.list:
        if self._missing(name):
            return embedded_default
        return self._config.list(name, default=embedded_default)

    def db_url(self, name: builtins.str, *, embedded_default: builtins.str) -> builtins.dict:
        self._missing(name)
        return self._config.db_url(name, default=embedded_default)

    def redis_url(self, name: builtins.str, *, embedded_default: builtins.str) -> builtins.str:
        if self._missing(name):
            return embedded_default
        return self._config.redis_url(name, default=embedded_default)

    def fernet_keys(self, name: builtins.str, *, embedded_default: builtins.list) -> builtins.list:
        if self._missing(name):
            return embedded_default
        return self._config.fernet_keys(name, default=embedded_default)

    def email_url(self, name: builtins.str, *, embedded_default: builtins.dict) -> builtins.dict:
        """Outgoing mail: in production a server that delivers it (smtp, smtps, smtp+tls, smtp+ssl).

        Delivery e-mails carry card codes: ``consolemail://`` would print them into the container
        logs, and ``memorymail``/``dummymail``/``filemail`` never deliver them.
        """
        if self._missing(name) or self._config._raw(name) is None:
            return embedded_default
        config = self._config.email_url(name, default="")
        if self._production and config["EMAIL_BACKEND"] != _SENDING_EMAIL_BACKEND:
            scheme = urlsplit(self._config._raw(name) or "").scheme
            self._config.problems.append(
                f"{name} ({scheme}://) does not send e-mail: with DEBUG off the shop needs a mail server, "
                "e.g. smtp+tls://USER:PASSWORD@smtp.example.com:587 (console mail would print card codes "
                "into the logs)"
            )
        return config
