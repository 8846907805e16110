"""Orders' payment port (orders/payment_port.py) is payments' implementation once Django has started,
and the refund choices orders now defines keep the values stored on Refund rows."""

from django.utils import translation

from orders import payment_port
from payments.models import Refund
from payments.port import Payments
from payments.services import PaymentError


def test_payments_registers_its_implementation_of_the_port():
    assert isinstance(payment_port.get(), Payments)


def test_a_payment_error_reaches_orders_as_a_refusal():
    assert issubclass(PaymentError, payment_port.PaymentRefused)


@translation.override("en")
def test_refund_reasons_and_routes_keep_their_stored_values():
    assert [(c.value, str(c.label)) for c in Refund.Reason] == [
        ("out_of_stock", "could not deliver: out of stock"),
        ("duplicate_payment", "paid twice"),
        ("after_sales", "after-sales"),
        ("operator", "operator decision"),
    ]
    assert [(c.value, str(c.label)) for c in Refund.Route] == [
        ("original", "original payment route"),
        ("wallet", "buyer's wallet"),
    ]
    assert Refund._meta.get_field("route").default == "original"
