"""Write a ``.env`` for the embedded run, with freshly generated development keys.

``make run`` calls ``python -m kameng.envfile``: if ``.env`` is missing it is created with a
random SECRET_KEY and one CARD_CODE_KEYS key, so card codes of the demo shop are encrypted with a
key of this machine. An existing ``.env`` is never touched (its keys decrypt the stock).
"""

from __future__ import annotations

import base64
import os
import secrets
import sys
from pathlib import Path

TEMPLATE = """\
# Written by `make run` for the embedded run (SQLite, eager Celery, sandbox payments).
# Keep this file: CARD_CODE_KEYS decrypts the card codes stored in db.sqlite3.
# Every variable is described in README.md, section Configuration.
# E-mail is kept in var/outbox/ (read it at /dev/outbox/ as the operator), never sent or printed.
# SITE_URL defaults to the address `make run` serves on (HOST, PORT); a SITE_URL set here wins.
DEBUG=true
SECRET_KEY={secret_key}
CARD_CODE_KEYS={card_key}
"""


def fernet_key() -> str:
    return base64.urlsafe_b64encode(os.urandom(32)).decode()


def write_env_file(path: Path) -> bool:
    if path.exists():
        return False
    path.write_text(TEMPLATE.format(secret_key=secrets.token_urlsafe(50), card_key=fernet_key()))
    path.chmod(0o600)
    return True


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent / ".env"
    print(f"wrote {target}" if write_env_file(target) else f"kept existing {target}")
