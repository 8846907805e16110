"""The back office for orders: orders of a merchant's goods, the manual-delivery queue, after-sales.

Scoping (accounts/scoping.py): merchant staff see an order when it contains at least one item of
their merchants, and then only *their* items of it; an after-sales request when its order does.
Another merchant's order or request answers 404, and actions only ever receive scoped rows. The
scope is an ``EXISTS`` on the order's items rather than a join (``items__merchant``), so an order
with several of the merchant's items appears once and the change list needs no ``DISTINCT``.

Orders are read-only here: their state changes only through the services — the actions below, the
manual-delivery form (orders.services.complete_manual_delivery) and after-sales decisions
(orders/aftersales.py). Card codes appear only as masks, never in lists or exports.

* Manual-delivery queue: the change list filter "awaiting manual delivery" (``?queue=manual``, a
  link on the change list with the count): processing orders with manual items; each has a form
  where the merchant types the result per item and completes the order; the buyer is e-mailed.
* Priority: orders of active annual members (orders/membership.py) carry a "member" mark and come
  first in the manual-delivery queue and in the after-sales list (``member_first`` ordering), for
  operators and merchant staff alike; a click on a column header still sorts by that column.
* Actions: re-send the delivery e-mail (the same codes), export order lines to .xlsx (no codes),
  and, for operators only, refund in full with a reason.
"""

from orders.admin import aftersales, membership, orders  # noqa: F401  (each registers its ModelAdmin)
