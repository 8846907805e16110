"""kameng.cache.RedisCache: Django's Redis cache, one client object per connection pool."""

import threading

from django.core.cache import cache

from kameng.cache import RedisCache


def test_the_configured_cache_reuses_one_client():
    from django.core.cache import caches

    backend = caches["default"]
    assert isinstance(backend, RedisCache)
    first = backend._cache.get_client(write=True)
    assert backend._cache.get_client(write=False) is first
    assert backend._cache.get_client("some-key") is first


def test_it_behaves_as_djangos_backend():
    assert cache.add("kameng-cache-test", 1, 30) is True
    assert cache.add("kameng-cache-test", 2, 30) is False
    assert cache.get("kameng-cache-test") == 1
    assert cache.incr("kameng-cache-test") == 2
    values = {"kameng-cache-a": [1, "二"], "kameng-cache-b": {"x": 3}}
    cache.set_many(values, 30)
    assert cache.get_many(list(values)) == values
    cache.delete_many(["kameng-cache-a", "kameng-cache-b", "kameng-cache-test"])
    assert cache.get("kameng-cache-a") is None


def test_threads_share_one_backend_and_client_safely():
    from django.core.cache import caches

    shared = caches.create_connection("default")  # one object for all threads (Django gives each its own)
    errors = []

    def work(n):
        try:
            for i in range(50):
                key = f"kameng-cache-thread-{n}-{i}"
                shared.set(key, i, 30)
                assert shared.get(key) == i
        except Exception as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    assert len(shared._cache._clients) == 1
