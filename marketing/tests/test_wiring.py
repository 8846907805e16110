from django.apps import apps


def test_every_domain_app_is_installed_with_its_urls():
    from django.urls import get_resolver

    namespaces = get_resolver().namespace_dict
    for label in ("accounts", "catalog", "orders", "payments", "marketing"):
        assert apps.is_installed(label)
        assert label in namespaces
