"""Slack interactivity (buttons, modals): see handle()."""

from __future__ import annotations

from django.http import JsonResponse

from deplite.api.errors import error_body


def handle(request):
    return JsonResponse(error_body("not_implemented", "Buttons are not available yet."), status=400)
