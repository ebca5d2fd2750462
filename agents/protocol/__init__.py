"""The agent protocol (`/api/agent/…`): every request is signed (agents.signing).

An agent sees only its own org's jobs and files, only jobs whose trigger labels it
carries (claim), and only the jobs it claimed (events, finish). Anything else is a 404.

- `authentication.py`: who is asking — a signed agent, or a running job's own token;
- `serializers.py`: what each request and answer holds;
- `views.py`: heartbeat, events, finish and a file's download URL (DRF views), and a running job's
  output uploads (job token only);
- `claim.py`: the long-poll claim, an async Django view, and its OpenAPI description.
"""

from .claim import claim_view
from .views import (
    FileDownloadUrlView,
    HeartbeatView,
    JobEventsView,
    JobFinishView,
    JobOutputCompleteView,
    JobOutputsView,
)

__all__ = [
    "FileDownloadUrlView",
    "HeartbeatView",
    "JobEventsView",
    "JobFinishView",
    "JobOutputCompleteView",
    "JobOutputsView",
    "claim_view",
]
