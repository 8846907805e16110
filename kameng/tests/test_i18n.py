import pytest

pytestmark = pytest.mark.django_db


def test_chinese_is_the_default_even_for_english_browsers(client, demo_shop):
    response = client.get("/", HTTP_ACCEPT_LANGUAGE="en-US,en;q=0.9")
    html = response.content.decode()
    assert response["Content-Language"] == "zh-hans"
    assert '<html lang="zh-CN">' in html
    assert "热门推荐" in html
    assert "Steam 钱包充值卡" in html


def test_switching_to_english_sticks(client, demo_shop):
    response = client.post("/i18n/setlang/", {"language": "en", "next": "/"})
    assert response.status_code == 302
    html = client.get("/").content.decode()
    assert '<html lang="en">' in html
    assert "Featured" in html
    assert "Steam Wallet card" in html  # product titles follow the language when translated
    assert "热门推荐" not in html


def test_unknown_language_cookie_falls_back_to_chinese(client, demo_shop, settings):
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "xx"
    assert "热门推荐" in client.get("/").content.decode()
