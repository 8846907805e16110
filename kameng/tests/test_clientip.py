"""The one client-IP helper (kameng/clientip.py): X-Forwarded-For believed only from our proxies."""

from __future__ import annotations

import ipaddress

import pytest
from django.test import RequestFactory

from kameng import clientip

PRIVATE = ["127.0.0.0/8", "::1/128", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"]


@pytest.fixture
def proxies(settings):
    settings.TRUSTED_PROXIES = [ipaddress.ip_network(n) for n in PRIVATE]
    settings.TRUSTED_PROXY_COUNT = 0
    return settings


@pytest.mark.parametrize(
    ("remote", "xff", "expected"),
    [
        ("203.0.113.7", "", "203.0.113.7"),  # no proxy
        ("203.0.113.7", "198.51.100.1", "203.0.113.7"),  # forged by an untrusted peer: ignored
        ("10.0.0.2", "198.51.100.1", "198.51.100.1"),  # through our proxy
        ("10.0.0.2", "6.6.6.6, 198.51.100.1", "198.51.100.1"),  # the client's own forged prefix is skipped
        ("10.0.0.2", "198.51.100.1, 10.0.0.9", "198.51.100.1"),  # two proxies of ours
        ("10.0.0.2", "", "10.0.0.2"),  # the proxy itself (health checks)
        ("10.0.0.2", "not-an-ip", "10.0.0.2"),  # garbage: the last hop we can read
        ("10.0.0.2", "198.51.100.1:5555", "198.51.100.1"),  # with a port
        ("10.0.0.2", "[2001:db8::5]:443", "2001:db8::5"),
        ("::ffff:10.0.0.2", "198.51.100.1", "198.51.100.1"),  # v4-mapped peer
        ("", "198.51.100.1", None),
    ],
)
def test_the_client_is_the_first_hop_that_is_not_our_proxy(proxies, remote, xff, expected):
    assert clientip.resolve(remote, xff) == expected


def test_a_proxy_count_takes_that_many_hops_from_the_right(settings):
    settings.TRUSTED_PROXIES = []
    settings.TRUSTED_PROXY_COUNT = 2  # CDN, then our nginx
    assert clientip.resolve("10.0.0.2", "6.6.6.6, 198.51.100.1, 192.0.2.10") == "198.51.100.1"
    assert clientip.resolve("10.0.0.2", "") == "10.0.0.2"  # skipped the proxies: only the peer is known


def test_no_trusted_proxies_means_the_peer(settings):
    settings.TRUSTED_PROXIES = []
    settings.TRUSTED_PROXY_COUNT = 0
    assert clientip.resolve("10.0.0.2", "198.51.100.1") == "10.0.0.2"


def test_the_setting_is_parsed_and_named_when_wrong(monkeypatch):
    from kameng.env import Config

    monkeypatch.setenv("TRUSTED_PROXIES", "10.1.0.0/16, 2001:db8::1")
    config = Config()
    assert config.networks("TRUSTED_PROXIES", default=[]) == [
        ipaddress.ip_network("10.1.0.0/16"),
        ipaddress.ip_network("2001:db8::1/128"),
    ]
    monkeypatch.setenv("TRUSTED_PROXIES", "none")
    assert Config().networks("TRUSTED_PROXIES", default=PRIVATE) == []
    monkeypatch.setenv("TRUSTED_PROXIES", "10.1.0.0/16,proxy.local")
    config = Config()
    config.networks("TRUSTED_PROXIES", default=[])
    assert config.problems and "TRUSTED_PROXIES" in config.problems[0]


def test_rate_limits_and_allauth_ask_the_same_helper(proxies):
    from allauth.account.adapter import get_adapter
    from django_ratelimit.core import _get_ip

    request = RequestFactory().get("/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="198.51.100.44")
    assert clientip.client_ip(request) == "198.51.100.44"
    assert _get_ip(request) == "198.51.100.44"
    assert get_adapter().get_client_ip(request) == "198.51.100.44"


def test_nothing_else_reads_the_peer_address_or_the_forwarded_header():
    """The contract in DESIGN.md: one helper feeds every per-IP rule."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    apps = ["kameng", "accounts", "catalog", "orders", "payments", "marketing"]
    offenders = [
        str(path.relative_to(root))
        for app in apps
        for path in (root / app).rglob("*.py")
        if "tests" not in path.parts
        and path.name != "clientip.py"
        and any(token in path.read_text() for token in ("REMOTE_ADDR", "X_FORWARDED_FOR", "X-Forwarded-For"))
    ]
    assert offenders == []
