from django.conf import settings
from django.core.management.base import BaseCommand

from catalog.demo import DEMO_SIGN_INS, seed_demo
from kameng import outbox


class Command(BaseCommand):
    help = "Create or refresh the demo shop (idempotent). Demo sign-ins are created only when DEBUG is on."

    def handle(self, *args, **options):
        kept_before = outbox.count_messages() if outbox.uses_outbox() else 0
        shop = seed_demo(with_users=settings.DEBUG, with_images=True)
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo shop ready: merchant {shop.merchant.name}, {len(shop.categories)} categories, "
                f"{len(shop.products)} products."
            )
        )
        site = settings.SITE_URL.rstrip("/")
        if settings.DEBUG:
            self.stdout.write(f"Back-office sign-ins at {site}/admin/:")
            width = max(len(f"{email} / {password}") for email, password, _role in DEMO_SIGN_INS)
            for email, password, role in DEMO_SIGN_INS:
                self.stdout.write(f"  {f'{email} / {password}':<{width}}  {role}")
        if outbox.uses_outbox():
            written = outbox.count_messages() - kept_before
            self.stdout.write(
                f"E-mails are not sent in this run: each one is kept as a file in {outbox.outbox_dir()}/, "
                f"listed at {site}/dev/outbox/ (signed in as the operator)."
            )
            if written:
                self.stdout.write(f"  {written} written while seeding (low-stock alerts of the demo stock).")
