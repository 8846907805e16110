import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kameng.settings")
application = get_wsgi_application()

# The embedded run has no celery beat: the serving process runs the periodic jobs in a thread
# (kameng/embedded.py; off with a broker, where `celery -A kameng beat` does it).
from kameng import embedded  # noqa: E402

embedded.start()
