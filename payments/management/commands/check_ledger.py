"""python manage.py check_ledger: verify the money ledger; exit 1 naming the first violation."""

from django.core.management.base import BaseCommand, CommandError

from payments.selectors import violations


class Command(BaseCommand):
    help = "Verify the ledger and settlement invariants over the whole database."

    def handle(self, *args, **options):
        for violation in violations():
            raise CommandError(f"ledger invariant violated: {violation}")
        self.stdout.write("ledger ok")
