"""Gateway notifications: store raw, verify, act, answer in the gateway's own format.

0. Anyone can POST here, so before anything is read or stored a body over
   ``PAYMENT_NOTIFY_MAX_BYTES`` is refused with 413 and a client IP over
   ``PAYMENT_NOTIFY_RATE_LIMIT`` with 429 (:func:`refusal`); a gateway retries either.
1. The message is stored as a :class:`~payments.models.Notification` in its own transaction before
   anything else, so a failure later still leaves the raw payload for operators.
2. The provider verifies it (signature with the gateway's key, our app id / merchant id, for WeChat
   the serial and the timestamp's age) and parses it — or refuses it with a reason.
3. A payment must be one of ours, in a success state, for exactly the payment's amount; then
   :func:`payments.services.confirm_payment` records it (idempotent: a repeat, or the same message
   twice at once, confirms once and delivers once). A refund must be one of ours, for that payment
   and amount; :func:`payments.services.record_refund_result` records the final answer.
4. Whatever happened is written on the Notification (outcome, reason, payment/refund), and the
   gateway gets its success answer (accepted or already handled) or its failure answer.

:func:`handle` never raises and never logs message bodies or keys.
"""

from __future__ import annotations

import json
import logging

from django.conf import settings
from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django_ratelimit.core import is_ratelimited

from kameng.clientip import client_ip
from orders import services as orders
from payments import providers, services
from payments.models import Notification, Payment, Refund

logger = logging.getLogger(__name__)
Outcome = Notification.Outcome
GATEWAY_HEADER_PREFIXES = ("wechatpay-", "content-type", "user-agent", "request-id")


def _raw_headers(request: HttpRequest) -> str:
    kept = {k: v for k, v in request.headers.items() if k.lower().startswith(GATEWAY_HEADER_PREFIXES)}
    return json.dumps(kept, ensure_ascii=False, sort_keys=True)


def _store(provider_name: str, request: HttpRequest) -> Notification:
    with transaction.atomic():
        return Notification.objects.create(
            provider=provider_name,
            body=request.body.decode("utf-8", "replace"),
            headers=_raw_headers(request),
            remote_addr=client_ip(request),
        )


def _finish(record: Notification, *, outcome: str, reason: str = "", **fields) -> None:
    for name, value in fields.items():
        setattr(record, name, value)
    record.outcome, record.reason, record.processed_at = outcome, reason[:2000], timezone.now()
    record.save()


def refusal(request: HttpRequest) -> HttpResponse | None:
    """The answer to a POST that must not be stored (too large, or too many from its IP), else None.

    Checked before the body is read: Django reads at most ``Content-Length`` bytes, so the header
    decides; the length of what was read is checked again for servers that do not say it.
    """
    rate = settings.PAYMENT_NOTIFY_RATE_LIMIT
    if is_ratelimited(request, group="payments.notify", key="ip", rate=rate, method="POST", increment=True):
        logger.warning("notification refused: too many from %s", client_ip(request))
        return HttpResponse("failure: too many requests", status=429, content_type="text/plain")
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > settings.PAYMENT_NOTIFY_MAX_BYTES or len(request.body) > settings.PAYMENT_NOTIFY_MAX_BYTES:
        logger.warning("notification refused: %s bytes from %s", declared, client_ip(request))
        return HttpResponse("failure: too large", status=413, content_type="text/plain")
    return None


def handle(*, provider_name: str, request: HttpRequest) -> HttpResponse:
    """Process one notification POSTed by ``provider_name``'s gateway and return the answer it expects."""
    refused = refusal(request)
    if refused is not None:
        return refused
    cls = providers.provider_class(provider_name)
    try:
        record = _store(provider_name, request)
    except Exception:
        logger.exception("%s notification could not be stored", provider_name)
        return _answer(cls, accepted=False, message="try again")
    try:
        accepted, message = _process(provider_name, request, record)
    except Exception as exc:
        logger.exception("%s notification %s failed while processing", provider_name, record.pk)
        try:
            _finish(record, outcome=Outcome.ERROR, reason=f"{type(exc).__name__}: {exc}")
        except Exception:
            logger.exception("could not record the failure of notification %s", record.pk)
        return _answer(cls, accepted=False, message="internal error, try again", server_error=True)
    return _answer(cls, accepted=accepted, message=message)


def _answer(cls, *, accepted: bool, message: str, server_error: bool = False) -> HttpResponse:
    if cls is None:
        return HttpResponse("failure", status=404, content_type="text/plain")
    response = cls.answer(accepted=accepted, message=message)
    if server_error and isinstance(response, JsonResponse):
        response.status_code = 500
    return response


def _process(provider_name: str, request: HttpRequest, record: Notification) -> tuple[bool, str]:
    try:
        provider = providers.get(provider_name)
    except providers.ProviderError:
        _finish(record, outcome=Outcome.REFUSED, reason=f"provider {provider_name!r} is not configured here")
        return False, "not configured"
    try:
        verified = provider.verify_notification(body=request.body, headers=request.headers, post=request.POST)
    except providers.NotificationRefused as refused:
        logger.warning("%s notification %s refused: %s", provider_name, record.pk, refused.reason)
        _finish(
            record, outcome=Outcome.REFUSED, reason=refused.reason, parsed=refused.parsed, verified=refused.verified,
            out_trade_no=refused.out_trade_no[:40],
        )  # fmt: skip
        return False, refused.reason
    record.verified, record.parsed, record.kind = True, verified.parsed, verified.kind
    record.out_trade_no, record.notify_id = verified.out_trade_no[:40], verified.notify_id[:64]
    if verified.kind == "refund":
        return _refund(provider, verified, record)
    return _payment(provider, verified, record)


def _refuse(record: Notification, reason: str, **fields) -> tuple[bool, str]:
    logger.warning("%s notification %s refused: %s", record.provider, record.pk, reason)
    _finish(record, outcome=Outcome.REFUSED, reason=reason, **fields)
    return False, reason


def _payment(provider, verified, record: Notification) -> tuple[bool, str]:
    payment = Payment.objects.filter(out_trade_no=verified.out_trade_no, provider=provider.name).first()
    if payment is None:
        return _refuse(record, f"unknown out_trade_no {verified.out_trade_no!r}")
    if not verified.succeeded:
        return _refuse(record, f"trade state {verified.state!r} is not a success state", payment=payment)
    if verified.amount_fen != payment.amount_fen:
        orders.record_event(
            payment.order, kind="payment_amount_mismatch",
            data={"out_trade_no": payment.out_trade_no, "paid_fen": verified.amount_fen, "source": "notification"},
        )  # fmt: skip
        return _refuse(
            record, f"amount {verified.amount_fen} fen differs from the payment's {payment.amount_fen} fen",
            payment=payment,
        )  # fmt: skip
    outcome = services.confirm_payment(
        out_trade_no=payment.out_trade_no, amount_fen=verified.amount_fen,
        gateway_trade_no=verified.gateway_trade_no, provider=provider.name,
    )  # fmt: skip
    if outcome in (services.Confirmation.AMOUNT_MISMATCH, services.Confirmation.UNKNOWN):
        return _refuse(record, f"confirmation refused: {outcome}", payment=payment)
    done = Outcome.REPEATED if outcome == services.Confirmation.REPEATED else Outcome.ACCEPTED
    _finish(record, outcome=done, reason=f"{verified.state}: {outcome}", payment=payment)
    return True, outcome


def _refund(provider, verified, record: Notification) -> tuple[bool, str]:
    refund = (
        Refund.objects.select_related("payment")
        .filter(out_refund_no=verified.out_refund_no, payment__provider=provider.name)
        .first()
    )
    if refund is None:
        return _refuse(record, f"unknown refund {verified.out_refund_no!r}")
    fields = {"refund": refund, "payment": refund.payment}
    if refund.payment.out_trade_no != verified.out_trade_no:
        return _refuse(record, "the refund belongs to another trade", **fields)
    if verified.refund_fen is not None and verified.refund_fen != refund.amount_fen:
        return _refuse(
            record, f"refund amount {verified.refund_fen} fen differs from {refund.amount_fen} fen", **fields
        )
    if verified.refunded_total_fen is not None and not (
        refund.amount_fen <= verified.refunded_total_fen <= refund.payment.amount_fen
    ):
        return _refuse(record, f"refunded total {verified.refunded_total_fen} fen does not fit this refund", **fields)
    if not verified.refund_final:
        _finish(record, outcome=Outcome.ACCEPTED, reason=f"{verified.state}: not final yet", **fields)
        return True, "noted"
    result = services.record_refund_result(
        refund_id=refund.pk, succeeded=verified.succeeded,
        gateway_refund_no=verified.gateway_refund_no or refund.gateway_refund_no,
        failure="" if verified.succeeded else f"{provider.name} refund {verified.state}",
    )  # fmt: skip
    done = Outcome.REPEATED if result == "repeated" else Outcome.ACCEPTED
    _finish(record, outcome=done, reason=f"{verified.state}: refund {result}", **fields)
    return True, result
