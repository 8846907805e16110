from django.conf import settings
from django.core.management.base import BaseCommand

from catalog.demo import DEMO_PASSWORDS, seed_demo


class Command(BaseCommand):
    help = "Create or refresh the demo shop (idempotent). Demo sign-ins are created only when DEBUG is on."

    def handle(self, *args, **options):
        shop = seed_demo(with_users=settings.DEBUG)
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo shop ready: merchant {shop.merchant.name}, {len(shop.categories)} categories, "
                f"{len(shop.products)} products."
            )
        )
        if settings.DEBUG:
            for email, password in DEMO_PASSWORDS.items():
                self.stdout.write(f"  admin sign-in: {email} / {password}")
