"""Card-code secrecy: encryption at rest, keyed fingerprints, masks.

* A code (and its optional password) is stored as one Fernet token of a small JSON document,
  encrypted with the newest key of ``CARD_CODE_KEYS``; older keys still decrypt (MultiFernet), and
  ``manage.py rotate_card_keys`` re-encrypts everything with the newest key.
* Duplicates are found without decrypting: ``fingerprint`` is an HMAC-SHA256 of the normalised code
  under a key derived from a Fernet key. The unique constraint is on (sku, fingerprint) under the
  newest key; while a rotation is pending, rows may still carry fingerprints under an older key, so
  duplicate checks compare against :func:`fingerprints` (one per configured key).
* The mask (first two and last two characters) is computed once, at import, so lists never decrypt.

Nothing here logs. Callers must not log plaintext either: the values returned by :func:`decrypt`
go to the buyer's order page, the buyer's e-mail, and a merchant's recorded reveal — nowhere else.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

MAX_CODE_LENGTH = 255


@dataclass(frozen=True)
class Secret:
    code: str
    password: str = ""

    def __repr__(self) -> str:  # never leak through logs, tracebacks or debuggers' reprs
        return "Secret(<hidden>)"

    __str__ = __repr__


def normalise(code: str) -> str:
    """What counts as "the same code": surrounding blanks removed, case kept (codes are case-sensitive)."""
    return code.strip()


@lru_cache(maxsize=8)
def _keys(keys: tuple[str, ...]) -> tuple[MultiFernet, tuple[bytes, ...]]:
    if not keys:
        raise ImproperlyConfigured(
            "CARD_CODE_KEYS is empty: card codes cannot be encrypted. `make run` writes a development key "
            "to .env; in production set CARD_CODE_KEYS (see README.md)."
        )
    fernets = [Fernet(key.encode()) for key in keys]
    # A separate MAC key per Fernet key (domain-separated), so the fingerprint key is never the
    # encryption key itself.
    mac_keys = tuple(hashlib.sha256(b"kameng card-code fingerprint\x00" + key.encode()).digest() for key in keys)
    return MultiFernet(fernets), mac_keys


def _configured() -> tuple[MultiFernet, tuple[bytes, ...]]:
    return _keys(tuple(settings.CARD_CODE_KEYS))


def encrypt(secret: Secret) -> str:
    payload = {"c": secret.code} if not secret.password else {"c": secret.code, "p": secret.password}
    return _configured()[0].encrypt(json.dumps(payload, separators=(",", ":")).encode()).decode()


def decrypt(token: str) -> Secret:
    try:
        payload = json.loads(_configured()[0].decrypt(token.encode()))
    except InvalidToken:
        raise InvalidToken("card code cannot be decrypted with any key in CARD_CODE_KEYS") from None
    return Secret(code=payload["c"], password=payload.get("p", ""))


def rotate(token: str) -> str:
    """Re-encrypt a token with the newest key (no-op in content)."""
    return _configured()[0].rotate(token.encode()).decode()


def fingerprint(code: str) -> str:
    """HMAC of the normalised code under the newest key: what the unique constraint holds."""
    return _mac(_configured()[1][0], code)


def fingerprints(code: str) -> list[str]:
    """The code's fingerprint under every configured key, newest first (for duplicate checks)."""
    return [_mac(key, code) for key in _configured()[1]]


def _mac(key: bytes, code: str) -> str:
    return hmac.new(key, normalise(code).encode(), hashlib.sha256).hexdigest()


def mask(code: str) -> str:
    """``AB12-CD34-EF56`` -> ``AB••••••••56``. Short codes show less, never more than a third."""
    code = normalise(code)
    shown = 2 if len(code) >= 8 else (1 if len(code) >= 4 else 0)
    hidden = min(max(len(code) - 2 * shown, 1), 8)
    return f"{code[:shown]}{'•' * hidden}{code[-shown:] if shown else ''}"
