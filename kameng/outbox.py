"""The embedded run's outbox: e-mail kept as files a developer reads, never printed to the console.

With no ``EMAIL_URL`` in DEBUG (``make run``), :class:`OutboxBackend` saves every message as one
``.eml`` file (RFC 5322, opens in any mail client) in ``EMAIL_FILE_PATH`` (``var/outbox/``) and logs
one line naming the file and its page — never a body: delivery e-mails carry card codes, and the
console backend used to print them into the log. ``/dev/outbox/`` lists the messages, newest first,
and shows one with its text and HTML parts.

Who may read it: the URLs exist only with DEBUG on (kameng/urls.py; the views also refuse without
it), and only operators (superusers, the Operators group) may open them — a buyer or a merchant's
staff must not read other people's codes, even on a development machine that serves its LAN
(``make run HOST=0.0.0.0``). Anonymous visitors are sent to the admin sign-in.
"""

from __future__ import annotations

import email
import email.policy
import functools
import logging
import os
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import parsedate_to_datetime
from pathlib import Path

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.core.mail.backends.base import BaseEmailBackend
from django.http import Http404
from django.shortcuts import render
from django.urls import NoReverseMatch, path, reverse
from django.utils import timezone

logger = logging.getLogger(__name__)

# <UTC time to the microsecond>-<random>.eml: names sort in the order the messages were kept.
NAME_RE = re.compile(r"^\d{8}-\d{6}-\d{6}-[0-9a-f]{8}\.eml$")
LIST_LIMIT = 200


def outbox_dir() -> Path:
    return Path(settings.EMAIL_FILE_PATH)


class OutboxBackend(BaseEmailBackend):
    """Django e-mail backend: one ``.eml`` file per message, written atomically (readers never see
    half a message), readable only by the shop's user."""

    def __init__(self, *, file_path: str | None = None, fail_silently: bool = False, **kwargs):
        super().__init__(fail_silently=fail_silently, **kwargs)
        self.directory = Path(file_path) if file_path else outbox_dir()

    def send_messages(self, email_messages) -> int:
        saved = 0
        for message in email_messages:
            if not message.recipients():
                continue
            try:
                name = self._save(message.message().as_bytes(linesep="\n"))
            except OSError:
                if not self.fail_silently:
                    raise
                continue
            saved += 1
            try:
                where = settings.SITE_URL.rstrip("/") + reverse("outbox_message", args=[name])
            except NoReverseMatch:  # DEBUG off: no page, only the file
                where = str(self.directory / name)
            # Recipients and where to read it only: subject and body stay in the file.
            logger.info("e-mail to %s kept in the outbox: %s", ", ".join(message.recipients()), where)
        return saved

    def _save(self, data: bytes) -> str:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        name = f"{timezone.now():%Y%m%d-%H%M%S-%f}-{uuid.uuid4().hex[:8]}.eml"
        temporary = self.directory / f".{name}.tmp"
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as file:
            file.write(data)
        os.replace(temporary, self.directory / name)
        return name


@dataclass
class Message:
    name: str
    subject: str
    to: str
    sent_at: datetime | None
    text: str = ""
    html: str = ""


def _read(path: Path, *, headers_only: bool) -> Message:
    with path.open("rb") as file:
        parsed: EmailMessage = email.message_from_binary_file(file, policy=email.policy.default, _class=EmailMessage)
    try:
        sent_at = parsedate_to_datetime(str(parsed["Date"])) if parsed["Date"] else None
    except (TypeError, ValueError):
        sent_at = None
    if sent_at is not None and timezone.is_naive(sent_at):  # Django writes "-0000": UTC
        sent_at = sent_at.replace(tzinfo=UTC)
    message = Message(name=path.name, subject=str(parsed["Subject"] or ""), to=str(parsed["To"] or ""), sent_at=sent_at)
    if not headers_only:
        text, html = parsed.get_body(("plain",)), parsed.get_body(("html",))
        message.text = text.get_content() if text else ""
        message.html = html.get_content() if html else ""
    return message


def list_messages(directory: Path | None = None, *, limit: int = LIST_LIMIT) -> list[Message]:
    """The newest ``limit`` messages, newest first (file names start with the time they were kept)."""
    directory = directory or outbox_dir()
    if not directory.is_dir():
        return []
    names = sorted((p.name for p in directory.iterdir() if NAME_RE.match(p.name)), reverse=True)[:limit]
    return [_read(directory / name, headers_only=True) for name in names]


def count_messages(directory: Path | None = None) -> int:
    directory = directory or outbox_dir()
    return sum(1 for p in directory.iterdir() if NAME_RE.match(p.name)) if directory.is_dir() else 0


def uses_outbox() -> bool:
    return settings.EMAIL_BACKEND == "kameng.outbox.OutboxBackend"


# --- pages -----------------------------------------------------------------------------------------
def _guarded(view):
    """DEBUG only (404 otherwise, even if someone routed the URL), operators only."""

    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        if not settings.DEBUG:
            raise Http404
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path(), reverse("admin:login"))
        # accounts.roles.is_operator, spelt out: kameng sits below accounts (docs/ARCHITECTURE.md).
        # An active superuser has every permission, so has_perm covers the superuser too.
        user = request.user
        if not (user.is_active and user.has_perm("accounts.operate_platform")):
            raise PermissionDenied
        return view(request, *args, **kwargs)

    return wrapper


@_guarded
def outbox_list(request):
    """/dev/outbox/: the kept e-mails, newest first."""
    return render(
        request,
        "kameng/outbox_list.html",
        {
            "messages_kept": list_messages(),
            "total": count_messages(),
            "limit": LIST_LIMIT,
            "directory": outbox_dir(),
            "uses_outbox": uses_outbox(),
        },
    )


@_guarded
def outbox_message(request, name: str):
    """/dev/outbox/<name>/: one e-mail, its text and (sandboxed) HTML parts."""
    path = outbox_dir() / name
    if not NAME_RE.match(name) or not path.is_file():
        raise Http404
    return render(request, "kameng/outbox_message.html", {"message": _read(path, headers_only=False)})


# Included at /dev/outbox/ by kameng/urls.py, with DEBUG on only.
urlpatterns = [
    path("", outbox_list, name="outbox"),
    path("<str:name>/", outbox_message, name="outbox_message"),
]
