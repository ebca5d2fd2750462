"""JSON API for triggers (`triggers.py`), the run endpoint (`run.py`), jobs (`jobs.py`) and
environments (`environments.py`, bodies in `environment_io.py`).

Thin views: an input serializer validates with the domain rules (`triggers.rules`), a
service writes, an output serializer answers. Names are snake_case here; the renderer and
parser (`deplite.api.camel`) put them in camelCase on the wire.
"""

from .environments import EnvironmentViewSet
from .jobs import JobFilter, JobViewSet
from .run import IDEMPOTENCY_KEY_RE, RunInput, TriggerRunView
from .triggers import TRIGGER_FIELDS, TriggerInput, TriggerViewSet

__all__ = [
    "EnvironmentViewSet",
    "IDEMPOTENCY_KEY_RE",
    "TRIGGER_FIELDS",
    "JobFilter",
    "JobViewSet",
    "RunInput",
    "TriggerInput",
    "TriggerRunView",
    "TriggerViewSet",
]
