from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from accounts import usercenter


@login_required
def overview(request):
    """The user-center home: a greeting, the cards other apps register (accounts/usercenter.py)
    and shortcuts."""
    return render(request, "accounts/overview.html", {"cards": usercenter.render_cards(request)})
