import pytest

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("object_id", ["abc", "1.5", "%20"])
def test_malformed_object_ids_are_404_not_500(client, merchant_staff, object_id):
    client.force_login(merchant_staff)
    for model in ("catalog/product", "catalog/sku", "catalog/cardcode"):
        assert client.get(f"/admin/{model}/{object_id}/change/").status_code == 404


def test_other_merchants_product_is_404_and_own_is_200(client, merchant_staff, demo_shop):
    client.force_login(merchant_staff)
    own = demo_shop.products["steam-wallet"]
    other = demo_shop.products["honor-of-kings"]
    assert client.get(f"/admin/catalog/product/{own.pk}/change/").status_code == 200
    assert client.get(f"/admin/catalog/product/{other.pk}/change/").status_code == 404
