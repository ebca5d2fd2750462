import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "deplite.settings")
application = get_wsgi_application()

from deplite.serving import web_process_started  # noqa: E402 (needs the settings configured above)

web_process_started.send(sender=None)
