"""The order lifecycle, told to apps above orders (marketing: coupons, specials, first-order
discounts, referral commission), which orders must not import (docs/ARCHITECTURE.md, layers).

Each signal is sent inside the transaction that made the change, with the order row locked, so a
receiver's writes commit or roll back with it — and a receiver's exception propagates:

* ``order_placed(order, quote)`` — in ``place_order``, after the items and codes: a receiver redeems
  what the quote used (a coupon's use, a special's quantity) and raises
  ``orders.pricing.OfferUnavailable`` when it is gone; the order is then not placed and the buyer is
  told why (``place_order`` turns it into a ``CheckoutError``).
* ``order_released(order)`` — an unpaid order expired or was cancelled: give back what it held.
* ``order_paid(order, late)`` — in ``confirm_paid`` (``late``: it had expired or been cancelled).
* ``order_refunded(order, before_fen, after_fen)`` — in ``record_refund``: the refunded amount went
  from ``before_fen`` to ``after_fen`` (``after_fen == order.total_fen``: refunded in full).

Lock order: receivers lock their own rows after the order (and after the points account, which
orders' own hooks lock first); see orders/locks.py.
"""

from django.dispatch import Signal

order_placed = Signal()
order_released = Signal()
order_paid = Signal()
order_refunded = Signal()
