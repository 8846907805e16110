"""E-mail verification is mandatory in production mode unless the operator says otherwise."""

from __future__ import annotations

import pytest

from kameng.tests.test_configuration import GOOD_PRODUCTION, manage

PRINT = "from django.conf import settings; print('verification=' + settings.ACCOUNT_EMAIL_VERIFICATION)"


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        (GOOD_PRODUCTION, "mandatory"),
        ({**GOOD_PRODUCTION, "ACCOUNT_EMAIL_VERIFICATION": "optional"}, "optional"),
        ({"DEBUG": "true"}, "optional"),
    ],
)
def test_email_verification_default_follows_the_mode(env, expected):
    result = manage("shell", "-c", PRINT, env=env)
    assert f"verification={expected}" in result.stdout, result.stderr
