#!/usr/bin/env python
"""Django's command-line utility for Kameng."""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kameng.settings")
    from kameng.startup import run_cli

    run_cli(sys.argv)


if __name__ == "__main__":
    main()
