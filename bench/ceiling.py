"""The ceiling: the least a run request can do on this stack, served in the same process.

One indexed SELECT (the API token by its hash), one INSERT (a job row) and one Celery
enqueue after commit, in a minimal DRF view behind the same middleware and server. The
hot paths are measured as a ratio to it, in the same run, because absolute numbers drift
on a shared machine.
"""

from __future__ import annotations

from django.db import transaction
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from deplite.background import enqueue_after_commit
from orgs import tokens
from orgs.models import ApiToken
from triggers.models import Job
from triggers.tasks import job_dispatch


class CeilingView(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]

    def post(self, request):
        raw = request.headers.get("Authorization", "").removeprefix("Bearer ")
        org_id = ApiToken.objects.filter(token_hash=tokens.hash_token(raw)).values_list("org_id", flat=True).first()
        if org_id is None:
            return Response({"error": {"code": "unauthenticated", "message": "no", "details": {}}}, status=401)
        ref = (request.data or {}).get("ref") or "main"
        with transaction.atomic():
            job = Job(org_id=org_id, trigger_name="ceiling", workflow="ceiling", ref=ref)
            job.save(force_insert=True)
            enqueue_after_commit(job_dispatch, str(job.id))
        return Response({"jobId": str(job.id), "status": job.status}, status=202)
