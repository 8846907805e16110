"""Cart, checkout, the order page and guest look-up. Thin: rules live in orders/services.py."""

from __future__ import annotations

import io
from dataclasses import dataclass

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import prefetch_related_objects
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import get_language, ngettext, pgettext
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST
from django_ratelimit.decorators import ratelimit
from openpyxl import Workbook

from accounts import points, wallet
from catalog.models import BuyerField, Product
from kameng import limits, xlsx
from kameng.clientip import client_ip
from kameng.money import fen_to_yuan_str
from kameng.templatetags.kameng import yuan
from orders import access, cart, forms, loyalty, payment_port, pricing, selectors, services
from orders.models import AfterSalesRequest, Order

MY_ORDERS_PAGE_SIZE = 10
CHECKOUT_SESSION_KEY = "kameng_checkout"  # "buy now" lines, kept apart from the cart
USE_POINTS_SESSION_KEY = "kameng_use_points"  # the buyer chose to pay part of the order with points
COUPON_SESSION_KEY = "kameng_coupon"  # the coupon code the buyer applied at checkout


# -- cart -----------------------------------------------------------------------------------------------


def _save_entries(request, entries: list[dict], *, buy_now: bool) -> None:
    """Store the lines being checked out where they came from: the "buy now" line or the cart."""
    if buy_now:
        if entries:
            request.session[CHECKOUT_SESSION_KEY] = entries
        else:
            request.session.pop(CHECKOUT_SESSION_KEY, None)
    else:
        cart.save(request, entries)


def _fitted(request, lines: list[cart.Line], *, buy_now: bool = False) -> tuple[list[cart.Line], bool]:
    """The lines within their limits (cart.fit); what changed is stored and said. Returns (lines, changed)."""
    kept, notes = cart.fit(lines)
    if notes:
        _save_entries(request, cart.entries_of(kept), buy_now=buy_now)
        for note in notes:
            messages.warning(request, note)
    return kept, bool(notes)


def _shown_total(request) -> int | None:
    """The total the checkout page showed when the form was sent (its hidden field), if any."""
    try:
        return int(request.POST["shown_total_fen"])
    except (KeyError, ValueError):
        return None


def _priced(
    lines: list[cart.Line], buyer, *, use_points: bool = False, coupon_code: str = "", email: str = ""
) -> pricing.Quote | None:
    """The quote of ``lines``, each line given its quoted line (for line totals at the price charged).
    ``email``: a guest's address once typed (a per-buyer offer counts it, as ``place_order`` does)."""
    if not lines:
        return None
    quote = pricing.quote(
        lines=[(line.sku, line.quantity) for line in lines],
        buyer=buyer,
        use_points=use_points,
        coupon_code=coupon_code,
        email=email,
    )
    for line, quoted in zip(lines, quote.lines, strict=True):
        line.quoted = quoted
    return quote


def cart_page(request):
    lines, _changed = _fitted(request, cart.lines(cart.raw(request)))
    return render(request, "orders/cart.html", {"lines": lines, "quote": _priced(lines, request.user)})


def _back(request):
    """Back to the page the form was on, if it is one of ours: the Referer is the client's to set, and
    following it blindly would make the cart an open redirect."""
    referer = request.META.get("HTTP_REFERER", "")
    if referer and url_has_allowed_host_and_scheme(
        referer, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return redirect(referer)
    return redirect("catalog:home")


@require_POST
def cart_add(request):
    form = forms.AddToCartForm(request.POST)
    if not form.is_valid():
        if "sku" in form.errors:
            messages.error(request, _("Please choose a denomination."))
        else:
            # A quantity typed by hand or tampered with: say what a quantity must be, for this product.
            messages.error(
                request, cart.bad_quantity_note(next(iter(cart.lines([{"sku": form.sku_id(), "qty": 1}])), None))
            )
        return _back(request)
    sku_id, quantity = form.cleaned_data["sku"], form.cleaned_data["quantity"]
    buy_now = bool(request.POST.get("buy_now"))
    entries = [] if buy_now else cart.raw(request)
    present = next((entry for entry in entries if entry.get("sku") == sku_id), None)
    before = 0
    if present is not None:
        before = present.get("qty") if isinstance(present.get("qty"), int) else 0
        present["qty"] = before + quantity
    elif len(entries) >= cart.MAX_LINES:
        messages.error(request, _("Your cart holds at most %(count)s lines.") % {"count": cart.MAX_LINES})
        return _back(request)
    else:
        entries.append({"sku": sku_id, "qty": quantity})
    resolved = cart.lines(entries)
    if not any(line.sku.pk == sku_id for line in resolved):
        messages.error(request, _("This denomination is not on sale right now."))
        return _back(request)
    lines, notes = cart.fit(resolved)
    for note in notes:
        messages.warning(request, note)
    if not any(line.sku.pk == sku_id and line.quantity > before for line in lines):
        return _back(request)  # sold out, or the cart already holds what the limit or the stock allows
    _save_entries(request, cart.entries_of(lines), buy_now=buy_now)
    if buy_now:
        return redirect("orders:checkout")
    messages.success(request, _("Added to your cart."))
    return redirect("orders:cart")


@require_POST
def cart_update(request):
    sku_id = cart.parse_quantity(request.POST.get("sku", ""))
    lines = cart.lines(cart.raw(request))
    line = next((line for line in lines if line.sku.pk == sku_id), None)
    if line is None:
        return redirect("orders:cart")
    quantity = 0 if request.POST.get("remove") else cart.parse_quantity(request.POST.get("quantity", ""))
    if quantity is None:
        messages.error(request, cart.bad_quantity_note(line))
        return redirect("orders:cart")
    if quantity == 0:
        lines.remove(line)
        cart.save(request, cart.entries_of(lines))
        messages.info(request, _("%(item)s was removed from your cart.") % {"item": line.title})
        return redirect("orders:cart")
    line.quantity = quantity
    lines, _changed = _fitted(request, lines)
    cart.save(request, cart.entries_of(lines))
    return redirect("orders:cart")


@require_POST
def cart_checkout(request):
    request.session.pop(CHECKOUT_SESSION_KEY, None)
    return redirect("orders:checkout")


# -- checkout -------------------------------------------------------------------------------------------


def _checkout_entries(request) -> tuple[list[dict], bool]:
    buy_now = request.session.get(CHECKOUT_SESSION_KEY)
    if buy_now:
        return buy_now, True
    return cart.raw(request), False


def _quantity_field(sku_id: int) -> str:
    return f"qty_{sku_id}"


def _posted_quantities(request, lines: list[cart.Line]) -> list[cart.Line] | None:
    """Apply the checkout page's quantity inputs to ``lines``. None when the form sent none or the
    same quantities (then the order is placed as shown); else the changed lines (a bad value is said
    and left as it was, 0 takes the line out)."""
    sent = {line.sku.pk: request.POST.get(_quantity_field(line.sku.pk)) for line in lines}
    if not request.POST.get("update") and all(
        value is None or cart.parse_quantity(value) == line.quantity
        for line, value in zip(lines, sent.values(), strict=True)
    ):
        return None
    changed = []
    for line in lines:
        value = sent[line.sku.pk]
        quantity = line.quantity if value is None else cart.parse_quantity(value)
        if quantity is None:
            messages.error(request, cart.bad_quantity_note(line))
            quantity = line.quantity
        if quantity == 0:
            messages.info(request, _("%(item)s was taken out of your order.") % {"item": line.title})
            continue
        line.quantity = quantity
        changed.append(line)
    return changed


def _buyer_fields(lines) -> list[tuple[int, BuyerField]]:
    product_ids = [
        line.sku.product_id for line in lines if line.sku.product.delivery_mode != Product.DeliveryMode.AUTOMATIC
    ]
    if not product_ids:
        return []
    fields = list(BuyerField.objects.filter(product_id__in=product_ids))
    return [(line.sku.pk, field) for line in lines for field in fields if field.product_id == line.sku.product_id]


def _checkout_rate(group, request) -> str | None:
    # Changing quantities on the checkout page places nothing: it does not count against the limit.
    # Trying a coupon code does (codes must not be guessed at leisure).
    update = request.POST.get("update")
    return None if update and update != "coupon-apply" else settings.CHECKOUT_RATE_LIMIT


@never_cache
@ratelimit(key="ip", rate=_checkout_rate, method="POST", block=False)
def checkout(request):
    placed = None
    if request.method == "POST":
        # The same form sent again after it succeeded (double click, back + resubmit): the cart is
        # already empty, so answer with the order it placed rather than an empty-cart page.
        sent_key = request.POST.get("idempotency_key", "")[:64]
        placed = Order.objects.filter(idempotency_key=sent_key).first()
        if placed is not None and access.may_resume(request, placed, sent_key):
            return redirect(placed)
    entries, buy_now = _checkout_entries(request)
    lines = cart.lines(entries)
    signed_in = request.user.is_authenticated
    if request.method == "POST" and request.POST.get("update") in ("points-on", "points-off"):
        # "Use points" / "Don't use points": re-priced and shown before anything is placed.
        request.session[USE_POINTS_SESSION_KEY] = request.POST["update"] == "points-on"
    use_points = signed_in and bool(request.session.get(USE_POINTS_SESSION_KEY))
    # "Apply": the code is kept for this checkout and the order re-priced with it (a code that gives
    # nothing stays, with the reason shown, so the buyer can correct it). A code typed but not applied
    # before "Place order" is applied the same way and shown first: the buyer sees the total it makes.
    sent_code = request.POST.get("coupon_code", "").strip()[:40] if request.method == "POST" else None
    coupon_changed = (
        request.POST.get("update") != "coupon-remove"
        and sent_code is not None
        and (
            request.POST.get("update") == "coupon-apply"
            or (
                "coupon_code" in request.POST
                and sent_code.upper() != request.session.get(COUPON_SESSION_KEY, "").upper()
            )
        )
    )
    if coupon_changed and getattr(request, "limited", False):
        messages.error(request, _("Too many attempts. Please wait a minute and try again."))
    elif coupon_changed:
        request.session[COUPON_SESSION_KEY] = sent_code
    elif request.POST.get("update") == "coupon-remove":
        request.session.pop(COUPON_SESSION_KEY, None)
    coupon_code = request.session.get(COUPON_SESSION_KEY, "")
    # Quantities are changed on this page (the buyer sees the new total before placing) and kept
    # within the limits; either way nothing is placed in this request.
    changed = _posted_quantities(request, lines) if request.method == "POST" else None
    if changed is not None:
        lines = changed
        _save_entries(request, cart.entries_of(lines), buy_now=buy_now)
        if not request.POST.get("update"):
            messages.info(request, _("The quantities changed: check the new total, then place the order."))
    lines, fitted = _fitted(request, lines, buy_now=buy_now)
    if not lines:
        messages.info(request, _("Your cart is empty."))
        return redirect("orders:cart")
    placing = request.method == "POST" and changed is None and not fitted and not coupon_changed
    buyer_fields = _buyer_fields(lines)
    initial = {"idempotency_key": access.new_checkout_key(request), "email": request.user.email if signed_in else ""}
    if signed_in:  # the account's verified number and SMS choice (/me/settings/) as the defaults
        user = request.user
        initial["phone"] = str(user.phone) if user.phone and user.phone_verified else ""
        initial["sms_delivery"] = user.notify_delivery_sms
    quote = _priced(
        lines, request.user, use_points=use_points, coupon_code=coupon_code, email=request.POST.get("email", "")[:254]
    )
    pay_choices, wallet_short = _pay_choices(request, total_fen=quote.total_fen)
    form = forms.CheckoutForm(
        request.POST if placing else None, initial=initial, buyer_fields=buyer_fields, signed_in=signed_in,
        pay_choices=pay_choices,
    )  # fmt: skip
    if request.method == "POST" and not placing:
        # Shown again with what the buyer typed (a fresh idempotency key: nothing was placed).
        form.initial.update(
            {name: request.POST[name] for name in form.fields if name != "idempotency_key" and name in request.POST}
        )
    if placing and getattr(request, "limited", False):
        messages.error(request, _("Too many attempts. Please wait a minute and try again."))
    elif placing and form.is_valid():
        data = form.cleaned_data
        try:
            placed = services.place_order(
                lines=[
                    services.CartLine(
                        sku_id=line.sku.pk, quantity=line.quantity, buyer_inputs=form.buyer_inputs(line.sku.pk)
                    )
                    for line in lines
                ],
                buyer=request.user,
                email=data["email"],
                phone=data.get("phone", ""),
                sms_opt_in=data.get("sms_delivery", False),
                chosen_secret=data.get("query_secret", ""),
                idempotency_key=data["idempotency_key"],
                client_ip=client_ip(request),
                language=get_language(),
                use_points=use_points,
                coupon_code=coupon_code,
                shown_total_fen=_shown_total(request),
                skus={line.sku.pk: line.sku for line in lines},  # read just now by cart.lines
                # Looked up above; no order had this key. (A replay of someone else's form finds
                # their order and must go through place_order's own check.)
                key_unused=placed is None and data["idempotency_key"] == request.POST.get("idempotency_key", "")[:64],
            )
        except services.CheckoutError as exc:
            messages.error(request, str(exc))
        else:
            if not placed.created and not access.may_resume(request, placed.order, data["idempotency_key"]):
                # Someone else's form (its idempotency key) replayed: never a way into their order.
                messages.error(request, _("This form was already used. Please check out again."))
                return redirect("orders:checkout")
            access.remember(request, placed.order)
            if placed.query_secret:
                # Shown once on the order page, never stored in plain text.
                access.keep_secret_to_show(request, placed.order, placed.query_secret)
            if placed.created:
                request.session.pop(COUPON_SESSION_KEY, None)
                if buy_now:
                    request.session.pop(CHECKOUT_SESSION_KEY, None)
                else:
                    cart.clear(request)
                if data.get("pay_with"):
                    # Straight on to paying (the gateway is called now, after place_order's commit and
                    # outside any transaction). A form sent twice pays through the order page instead.
                    # Payments answers through orders' port (orders/payment_port.py), so orders
                    # never imports payments; one request still places and opens the payment.
                    return payment_port.get().start(request, order=placed.order, provider_name=data["pay_with"])
            return redirect(placed.order)
    context = {
        "form": form, "lines": lines, "quote": quote, "buy_now": buy_now, "paying": bool(pay_choices),
        "wallet_short": wallet_short, **_points_context(request, quote=quote, use_points=use_points),
        **_coupon_context(quote, coupon_code=coupon_code),
    }  # fmt: skip
    return render(request, "orders/checkout.html", context)


def _coupon_context(quote: pricing.Quote, *, coupon_code: str) -> dict:
    """What the checkout says about the code entered: its discount, why it gave nothing (the rule
    that read it puts the reason in the quote's context), or that a better offer was taken instead."""
    applied = sum(a.amount_fen for a in quote.adjustments if a.rule == "coupon")
    passed_over = next((p for p in quote.passed_over if p["rule"] == "coupon"), None)
    capped = coupon_code and not applied and any(a.rule == "coupon" for a in quote.not_given)
    return {
        "coupon_code": coupon_code,
        "coupon_discount_fen": applied,
        "coupon_refusal": quote.context.get("coupon_refusal", "") if coupon_code else "",
        "coupon_passed_over": passed_over,
        "coupon_capped": capped,
    }


def _points_context(request, *, quote: pricing.Quote, use_points: bool) -> dict:
    """What the checkout says about points: those this order uses (or could use) and those it earns."""
    if not request.user.is_authenticated:
        return {}
    used = next((a.amount_fen for a in quote.adjustments if a.rule == loyalty.RULE_POINTS), 0)
    offer = None if used else loyalty.points_offer(buyer=request.user, quote=quote)
    return {
        "use_points": bool(used),
        "points_used": quote.points_used,
        "points_discount_fen": used,
        "points_offer": offer if offer and offer.points else None,
        "points_to_earn": loyalty.points_to_earn(total_fen=quote.total_fen),
    }


@dataclass
class WalletShort:
    """The wallet, offered but not enough for this amount: shown disabled with what is missing."""

    balance_fen: int
    missing_fen: int

    @property
    def top_up_url(self) -> str:
        amount = max(self.missing_fen, settings.WALLET_TOP_UP_MIN_FEN)  # what is missing, if a top-up may be that small
        return f"{reverse('accounts:wallet')}?amount={fen_to_yuan_str(amount)}#top-up"


def _wallet_short(request, *, total_fen: int, balance_fen: int | None) -> WalletShort | None:
    """For a signed-in buyer whose wallet does not cover ``total_fen``: the balance and the gap."""
    if balance_fen is None or balance_fen >= total_fen:
        return None
    return WalletShort(balance_fen=balance_fen, missing_fen=total_fen - balance_fen)


def _pay_choices(request, *, total_fen: int) -> tuple[list[tuple[str, str]], WalletShort | None]:
    """The checkout form's "pay with" choices (the wallet when it covers the order, then the
    gateways), and the wallet shortfall to show instead of a silent gap when it does not."""
    balance = wallet.balance_fen(request.user) if request.user.is_authenticated else None
    choices = []
    offered = payment_port.get().choices_for_checkout(user=request.user, total_fen=total_fen, balance_fen=balance)
    for provider in offered:
        label = provider.label
        if provider.name == "balance":
            label = _("Wallet balance (%(balance)s)") % {"balance": yuan(balance)}
        choices.append((provider.name, label))
    return choices, _wallet_short(request, total_fen=total_fen, balance_fen=balance)


# -- the order page -------------------------------------------------------------------------------------


def _order_for(request, number: str) -> Order:
    order = get_object_or_404(Order, number=number)
    if not access.can_view(request, order):
        raise Http404  # the same answer as for an order that does not exist
    return order


@never_cache
def detail(request, number: str):
    if "t" in request.GET:
        # A guest's link from the delivery SMS: remember the order in this session, then show the
        # page at its plain address so the token stays out of history and Referer headers.
        linked = get_object_or_404(Order, number=number)
        access.open_by_link(request, linked, request.GET["t"])
        return redirect(linked)
    order = _order_for(request, number)
    status = services.effective_status(order)
    delivered = []
    if status in (Order.Status.DELIVERED, Order.Status.PROCESSING) or order.refunded_fen:
        delivered = selectors.delivered_codes(order=order)
        if any(entry.secrets for entry in delivered):
            services.mark_codes_viewed(order=order)
    balance = None
    top_up = order.kind == Order.Kind.TOP_UP
    if (
        status == Order.Status.PENDING_PAYMENT
        and not top_up  # a top-up is never paid from the wallet it fills
        and request.user.is_authenticated
        and order.buyer_id == request.user.pk
    ):
        balance = wallet.balance_fen(request.user)
    seconds_left = max(0, int((order.reserved_until - timezone.now()).total_seconds()))
    minutes, seconds = divmod(seconds_left, 60)
    context = {
        "order": order,
        "status": status,
        "items": delivered or [selectors.DeliveredItem(item=item) for item in order.items.all()],
        "providers": (
            payment_port.get().choices_for_order(order=order, user=request.user, balance_fen=balance)
            if status == Order.Status.PENDING_PAYMENT
            else []
        ),
        "wallet_balance_fen": balance,
        "wallet_short": _wallet_short(request, total_fen=order.total_fen, balance_fen=balance),
        "top_up": top_up,
        "goods": order.kind == Order.Kind.GOODS,  # items, codes, downloads and after-sales
        "membership_order": order.kind == Order.Kind.MEMBERSHIP,
        # mm:ss, the same as order.js ticks it (and what is read without JavaScript).
        "countdown": format_html(
            '<strong id="countdown" data-seconds="{}">{}</strong>', seconds_left, f"{minutes}:{seconds:02d}"
        ),
        "query_secret": access.pop_secret_to_show(request, order),
        "Status": Order.Status,
        "waiting": status in (Order.Status.PENDING_PAYMENT, Order.Status.PAID, Order.Status.REFUNDING),
        **_order_points(request, order, status),
    }
    response = render(request, "orders/detail.html", context)
    response["Cache-Control"] = "no-store"
    return response


def _order_points(request, order: Order, status: str) -> dict:
    """The points an unpaid order would earn (shown before paying), or those it earned, for its
    signed-in buyer; goods orders only (a top-up earns none)."""
    if order.kind != Order.Kind.GOODS or order.buyer_id is None or order.buyer_id != request.user.pk:
        return {}
    if status == Order.Status.PENDING_PAYMENT:
        return {"points_to_earn": loyalty.points_to_earn(total_fen=order.total_fen)}
    entry = points.find(kind=points.Kind.EARN, reference=order.number) if order.paid_at else None
    return {"points_earned": entry.points if entry else 0}


@never_cache
def status_json(request, number: str):
    order = _order_for(request, number)
    return JsonResponse(
        {
            "status": services.effective_status(order),
            "seconds_left": max(0, int((order.reserved_until - timezone.now()).total_seconds())),
        }
    )


@require_POST
def cancel(request, number: str):
    order = _order_for(request, number)
    if services.cancel_order(order=order, actor=request.user if request.user.is_authenticated else None):
        messages.info(request, _("Order cancelled."))
    return redirect(order)


def download_codes(request, number: str, fmt: str):
    order = _order_for(request, number)
    if (
        fmt not in ("txt", "xlsx")
        or order.kind != Order.Kind.GOODS
        or services.effective_status(order)
        not in (
            Order.Status.DELIVERED,
            Order.Status.PROCESSING,
        )
    ):
        raise Http404
    delivered = selectors.delivered_codes(order=order)
    services.mark_codes_viewed(order=order)
    if fmt == "txt":
        lines = []
        for entry in delivered:
            for secret in entry.secrets:
                row = [entry.item.product_title, entry.item.sku_label, secret.code]
                lines.append("\t".join([*row, secret.password] if secret.password else row))
        response = HttpResponse("\n".join(lines) + "\n", content_type="text/plain; charset=utf-8")
    else:
        book = Workbook(write_only=True)
        sheet = book.create_sheet(order.number)
        sheet.append(xlsx.row(sheet, [_("Product"), _("Denomination"), _("Code"), _("Password")]))
        for entry in delivered:
            for secret in entry.secrets:
                # Text cells: a code that starts with "=" must not become a formula.
                sheet.append(
                    xlsx.row(sheet, [entry.item.product_title, entry.item.sku_label, secret.code, secret.password])
                )
        buffer = io.BytesIO()
        book.save(buffer)
        response = HttpResponse(
            buffer.getvalue(), content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        )
    response["Content-Disposition"] = f'attachment; filename="{order.number}.{fmt}"'
    response["Cache-Control"] = "no-store"
    return response


# -- guest look-up --------------------------------------------------------------------------------------


def _lookup_attempt(request, needle: str) -> limits.Attempt:
    """Count one look-up of ``needle`` (ORDER_LOOKUP_RATE_LIMITS): per client IP, per number (or
    e-mail) from that IP — so a stranger's failures do not lock the buyer out on another network —
    and per number from anywhere, much higher, against a guesser spread over many addresses."""
    rates = settings.ORDER_LOOKUP_RATE_LIMITS
    return limits.attempt(
        request,
        action="order_lookup",
        limits=[
            (rates["ip"], None),
            (rates["number_and_ip"], f"{needle}|{client_ip(request)}"),
            (rates["number"], needle),
        ],
    )


@never_cache
def lookup(request):
    form = forms.LookupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        needle, secret = form.cleaned_data["number"], form.cleaned_data["secret"]
        attempt = _lookup_attempt(request, needle)
        if not attempt.allowed:
            minutes = attempt.wait_minutes
            message = ngettext(
                "Too many attempts. Please wait %(minutes)d minute and try again.",
                "Too many attempts. Please wait %(minutes)d minutes and try again.",
                minutes,
            )
            form.add_error(None, message % {"minutes": minutes})
            return render(request, "orders/lookup.html", {"form": form}, status=429)
        found = services.find_guest_orders(needle=needle, secret=secret)
        if found:
            attempt.rollback()  # only failures count
            for order in found:
                access.remember(request, order)
            if len(found) == 1:
                return redirect(found[0])
            now = timezone.now()
            prefetch_related_objects(found, "items")
            rows = [(order, Order.Status(services.effective_status(order, now=now)).label) for order in found]
            return render(request, "orders/lookup.html", {"form": forms.LookupForm(), "found": rows})
        form.add_error(None, _("No order matches this number (or e-mail) and password."))
    return render(request, "orders/lookup.html", {"form": form})


def my_orders(request):
    """The signed-in buyer's orders by tab, searchable, ten a page; guests look orders up instead.
    Queries stay constant as orders grow: tab counts, the page, its items (and the wallet balance
    once when the page has an order to pay)."""
    if not request.user.is_authenticated:
        return redirect("orders:lookup")
    now = timezone.now()
    form = forms.MyOrdersFilterForm(request.GET)
    tab, query = form.values(selectors.MY_ORDER_TABS)
    orders, counts = selectors.buyer_orders(buyer=request.user, tab=tab, query=query, now=now)
    paginator = Paginator(orders, MY_ORDERS_PAGE_SIZE)
    paginator.count = counts[tab]  # already counted with the tabs: no second COUNT query
    page = paginator.get_page(request.GET.get("page"))
    rows = list(page.object_list)
    payable = [o for o in rows if services.effective_status(o, now=now) == Order.Status.PENDING_PAYMENT]
    balance = wallet.balance_fen(request.user) if any(o.kind == Order.Kind.GOODS for o in payable) else None
    after_sales_labels = dict(AfterSalesRequest.Status.choices)
    for order in rows:
        order.shown_status = services.effective_status(order, now=now)
        order.status_label = Order.Status(order.shown_status).label
        order.after_sales_label = after_sales_labels.get(order.after_sales_status, "")
        order.pay_with = None
        if order in payable:
            choices = payment_port.get().choices_for_order(order=order, user=request.user, balance_fen=balance)
            order.pay_with = choices[0] if choices else None
    tab_labels = {
        "all": _("All"),
        "unpaid": _("Unpaid"),
        "delivered": pgettext("order tab", "Delivered"),
        "after_sales": _("After-sales"),
        "refunded": _("Refunds"),
    }
    context = {
        "orders": rows,
        "page": page,
        "tab": tab,
        "search": query,  # not "query": base.html's shop search box reads that
        "tabs": [(name, tab_labels[name], counts[name]) for name in selectors.MY_ORDER_TABS],
        "Status": Order.Status,
    }
    response = render(request, "orders/list.html", context)
    response["Cache-Control"] = "no-store"
    return response
