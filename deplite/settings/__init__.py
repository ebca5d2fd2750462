"""Deplite settings: one package, read from the environment only.

With no environment at all this is the *embedded default* a newcomer gets from
`make run`: a SQLite file under var/, Celery tasks run eagerly in-process, a
local-memory cache, and a SECRET_KEY / Fernet key generated once into var/.
Setting DATABASE_URL and REDIS_URL switches to PostgreSQL and Redis without any
code edit. With DEBUG off, every secret must come from the environment.

One module per concern, each reading its variables through `base.env`, the one reader of
the environment; this module gathers them into `deplite.settings`. A module imports what it
uses from another (`from .base import SECRET_KEY`), so the order below does not matter.
"""

from .api import *  # noqa: F403
from .auth import *  # noqa: F403
from .base import *  # noqa: F403
from .celery import *  # noqa: F403
from .chat import *  # noqa: F403
from .database import *  # noqa: F403
from .jobs import *  # noqa: F403
from .operations import *  # noqa: F403
from .security import *  # noqa: F403
from .storage import *  # noqa: F403
