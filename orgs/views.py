"""Web pages. Pages resolve orgs with the same `principal_for_org` as the API."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from .selectors import orgs_for_user


@login_required
def dashboard(request):
    return render(request, "orgs/dashboard.html", {"orgs": orgs_for_user(user=request.user)})
