"""``manage.py apply_trade_template <name>``: set up a shop for a trade (catalog/trade_templates.py).
Idempotent; never deletes or changes what exists."""

from django.core.management.base import BaseCommand, CommandError

from catalog import trade_templates


class Command(BaseCommand):
    help = "Create the categories, home sections and sample slides of a trade template (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("name", nargs="?", help=", ".join(trade_templates.TEMPLATES))
        parser.add_argument("--list", action="store_true", help="List the templates.")
        parser.add_argument("--no-slides", action="store_true", help="Do not add sample carousel slides.")

    def handle(self, *args, name=None, list=False, no_slides=False, **options):
        if list or not name:
            for key, template in trade_templates.TEMPLATES.items():
                self.stdout.write(f"{key}\t{template.label}\t{template.description}")
            if not name:
                return
        if name not in trade_templates.TEMPLATES:
            raise CommandError(f"Unknown template {name!r}; one of: {', '.join(trade_templates.TEMPLATES)}")
        applied = trade_templates.apply(name, with_slides=not no_slides)
        self.stdout.write(
            self.style.SUCCESS(
                f"{name}: {applied.categories} categories, {applied.sections} sections, {applied.slides} slides added"
            )
        )
