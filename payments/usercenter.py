"""The wallet card of the user-center home (accounts/usercenter.py): the balance with links to
top up and to the history (payments/wallet_views.py)."""

from __future__ import annotations

from accounts import usercenter, wallet


def card_context(request) -> dict:
    return {"balance_fen": wallet.balance_fen(request.user)}


def register() -> None:
    usercenter.register(
        name="wallet",
        app="payments",
        template="payments/usercenter_card.html",
        context=card_context,
        order=usercenter.WALLET,
    )
