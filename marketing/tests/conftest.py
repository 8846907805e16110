from orders.tests.conftest import stocked_sku  # noqa: F401  (a fixture: a SKU with 5 codes at ¥10)
