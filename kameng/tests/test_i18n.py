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


def test_every_string_in_the_source_is_translated_and_the_catalog_compiled(tmp_path):
    """Chinese is the default: a string added without its translation shows up in English.

    ``makemessages`` runs over a copy of the source; every msgid must have a non-fuzzy Chinese
    translation, and the committed .mo must be what the committed .po compiles to.
    """
    import os
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    missing = [tool for tool in ("xgettext", "msgattrib", "msgfmt") if shutil.which(tool) is None]
    assert not missing, f"{missing} not found: install gettext (sudo apt-get install -y gettext)"
    root = Path(__file__).resolve().parents[2]
    source = tmp_path / "src"
    shutil.copytree(
        root,
        source,
        ignore=shutil.ignore_patterns(
            ".venv", ".git", "var", "staticfiles", "test-artifacts", "media", "*.sqlite3", "__pycache__", ".*_cache"
        ),
    )
    env = {
        **{k: v for k, v in os.environ.items() if k in {"PATH", "HOME", "LANG", "TMPDIR"}},
        "KAMENG_IGNORE_ENV_FILE": "1",
        "DEBUG": "true",
        "SECRET_KEY": "i18n-test-" + "x" * 40,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'unused.sqlite3'}",
    }
    made = subprocess.run(
        [sys.executable, "manage.py", "makemessages", "-l", "zh_Hans", "--ignore=staticfiles", "--no-obsolete"],
        cwd=source, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    po = source / "kameng" / "locale" / "zh_Hans" / "LC_MESSAGES" / "django.po"
    for option in ("--untranslated", "--only-fuzzy"):
        left = subprocess.run(
            ["msgattrib", option, "--no-obsolete", "--no-wrap", str(po)], capture_output=True, text=True, check=True
        ).stdout
        missing = [line for line in left.splitlines() if line.startswith("msgid ") and line != 'msgid ""']
        assert not missing, f"{option[2:]} strings (run `make messages` and translate them): {missing[:20]}"

    committed = root / "kameng" / "locale" / "zh_Hans" / "LC_MESSAGES"
    compiled = tmp_path / "django.mo"
    subprocess.run(["msgfmt", "--check-format", "-o", str(compiled), str(committed / "django.po")], check=True)
    assert compiled.read_bytes() == (committed / "django.mo").read_bytes(), "django.mo is stale: run `make messages`"
