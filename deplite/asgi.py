import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "deplite.settings")
django_application = get_asgi_application()

from deplite.asgi_body_limit import BodyLimit  # noqa: E402 (needs the settings configured above)

# Bodies over DEPLITE_MAX_API_BODY_BYTES are refused before Django reads them (chunked ones too).
application = BodyLimit(django_application)
