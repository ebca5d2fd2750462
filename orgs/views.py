"""Web pages for organisations, members, API tokens and the audit log.

Pages resolve the org with the same `principal_for_org` as the API (session user →
Principal) and check the same permissions, so a page can never show more than the API.
"""

from __future__ import annotations

import uuid
from functools import wraps

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponseForbidden
from django.shortcuts import redirect, render

from deplite import crypto
from deplite.api.errors import DepliteError, NotFound

from . import services
from .forms import ApiTokenForm, MemberAddForm
from .models import ApiToken, AuditEvent, Invitation, Membership
from .permissions import Perm
from .scoping import principal_for_org
from .selectors import orgs_for_user


def org_page(perm: str):
    """Resolve `org_slug` to a Principal for the logged-in user and require `perm`."""

    def decorator(view):
        @login_required
        @wraps(view)
        def wrapper(request, org_slug, *args, **kwargs):
            try:
                principal = principal_for_org(request, org_slug)
            except NotFound:
                raise Http404("Organization not found") from None
            if not principal.has(perm):
                return HttpResponseForbidden("You do not have permission to view this page.")
            request.principal = principal
            return view(request, principal.org, *args, **kwargs)

        return wrapper

    return decorator


def _one(queryset, pk):
    """One row of an already org-scoped queryset by id, or 404 (also for a malformed id)."""
    try:
        obj = queryset.filter(pk=uuid.UUID(str(pk))).first()
    except ValueError:
        obj = None
    if obj is None:
        raise Http404
    return obj


def _render(request, template, context):
    principal = request.principal
    context = {"org": principal.org, "principal": principal, "perms": principal.permissions, **context}
    return render(request, template, context)


@login_required
def dashboard(request):
    memberships = list(orgs_for_user(user=request.user))
    if len(memberships) == 1:
        return redirect("org-home", org_slug=memberships[0].org.slug)
    return render(request, "orgs/dashboard.html", {"orgs": memberships})


@org_page(Perm.ORG_READ)
def org_home(request, org):
    return _render(request, "orgs/home.html", {"memberships": orgs_for_user(user=request.user)})


@org_page(Perm.MEMBERS_READ)
def members_page(request, org):
    form = MemberAddForm()
    if request.method == "POST":
        if not request.principal.has(Perm.MEMBERS_MANAGE):
            return HttpResponseForbidden("Only admins can add members.")
        form = MemberAddForm(request.POST)
        if form.is_valid():
            try:
                services.member_add(
                    org=org, actor=request.principal.actor, actor_role=request.principal.role, **form.cleaned_data
                )
            except DepliteError as exc:
                form.add_error(None, exc.message)
            else:
                messages.success(request, f"Added {form.cleaned_data['email']}.")
                return redirect("org-members", org_slug=org.slug)
    return _render(
        request,
        "orgs/members.html",
        {
            "members": request.principal.restrict(Membership.objects.select_related("user")).order_by("created_at"),
            "invitations": request.principal.restrict(Invitation.objects.filter(accepted_at__isnull=True)),
            "form": form,
        },
    )


_NEW_TOKEN_SESSION_KEY = "deplite.new_token"  # noqa: S105 (a session key name)


@org_page(Perm.TOKENS_MANAGE)
def tokens_page(request, org):
    tokens_qs = request.principal.restrict(ApiToken.objects.select_related("created_by"))
    form = ApiTokenForm(org=org)
    if request.method == "POST" and "revoke" in request.POST:
        token = _one(tokens_qs, request.POST["revoke"])
        services.token_revoke(token=token, actor=request.principal.actor)
        messages.success(request, f"Revoked {token.name}.")
        return redirect("org-tokens", org_slug=org.slug)
    if request.method == "POST":
        form = ApiTokenForm(request.POST, org=org)
        if form.is_valid():
            try:
                token, raw = services.token_create(org=org, actor=request.principal.actor, **form.service_kwargs())
            except DepliteError as exc:
                form.add_error(None, exc.message)
            else:
                # Post/redirect/get, so a reload cannot mint a second token. The plaintext
                # rides in the session, encrypted, for exactly the next page view.
                request.session[_NEW_TOKEN_SESSION_KEY] = {"id": str(token.id), "raw": crypto.encrypt(raw)}
                return redirect("org-tokens", org_slug=org.slug)
    created = None
    stash = request.session.pop(_NEW_TOKEN_SESSION_KEY, None)
    if stash and request.method == "GET":
        token = tokens_qs.filter(pk=stash["id"]).first()
        if token is not None:
            created = {"token": token, "raw": crypto.decrypt(stash["raw"])}
    return _render(request, "orgs/tokens.html", {"tokens": tokens_qs, "form": form, "created": created})


@org_page(Perm.AUDIT_READ)
def audit_page(request, org):
    return _render(request, "orgs/audit.html", {"events": request.principal.restrict(AuditEvent.objects.all())[:200]})
