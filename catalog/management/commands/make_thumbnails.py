"""Write the missing thumbnails of every product picture (pictures uploaded before thumbnails
existed, or restored from a backup without them); ``--force`` rewrites them all."""

from django.core.management.base import BaseCommand

from catalog import images
from catalog.models import Product, ProductImage


class Command(BaseCommand):
    help = "Write the missing thumbnails of product pictures (catalog/images.py)."

    def add_arguments(self, parser):
        parser.add_argument("--force", action="store_true", help="rewrite thumbnails that exist")

    def handle(self, *args, force: bool = False, **options):
        names = set(Product.objects.exclude(image="").values_list("image", flat=True))
        names |= set(ProductImage.objects.exclude(image="").values_list("image", flat=True))
        written = failed = 0
        for name in sorted(names):
            try:
                written += len(images.make_renditions(name, force=force))
            except OSError as exc:
                failed += 1
                self.stderr.write(f"{name}: {exc}")
        self.stdout.write(f"{len(names)} pictures, {written} thumbnails written, {failed} unreadable")
