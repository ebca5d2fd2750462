"""Web pages for organisations, members, API tokens and the audit log.

Pages resolve the org with the same `principal_for_org` as the API (session user →
Principal) and check the same permissions, so a page can never show more than the API.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponseForbidden
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from deplite.api.errors import DepliteError, NotFound

from . import extensions, ratelimit, selectors, services
from .api import ApiTokenCreateInput
from .forms import ApiTokenForm, MemberAddForm
from .models import ApiToken, AuditEvent, Invitation, Membership
from .pages import add_api_errors, call_service, org_page, page_object, pop_secret, render_page, stash_secret
from .permissions import Perm
from .selectors import orgs_for_user


@login_required
def dashboard(request):
    memberships = list(orgs_for_user(user=request.user))
    invitations = selectors.invitations_open_for(user=request.user)
    if len(memberships) == 1 and not invitations:
        return redirect("org-home", org_slug=memberships[0].org.slug)
    return render(request, "orgs/dashboard.html", {"orgs": memberships, "invitations": invitations})


@login_required
@require_POST
def logout_everywhere(request):
    """End every login of this user (other browsers, API refresh and access tokens), then this one."""
    services.user_sessions_end(user=request.user)
    logout(request)
    messages.success(request, "You are logged out everywhere.")
    return redirect(settings.LOGIN_URL)


@login_required
@require_POST
def invitation_accept(request, invitation_id):
    try:
        membership = services.invitation_accept(
            invitation_id=invitation_id, user=request.user, ip=ratelimit.client_ip(request)
        )
    except NotFound:
        raise Http404("Invitation not found") from None
    except DepliteError as exc:
        messages.error(request, exc.message)
        return redirect("dashboard")
    messages.success(request, f"You joined {membership.org.name}.")
    return redirect("org-home", org_slug=membership.org.slug)


@org_page(Perm.ORG_READ)
def org_home(request, org):
    steps, panels = extensions.overview_for(request, org)
    return render_page(
        request,
        "orgs/home.html",
        {
            "memberships": orgs_for_user(user=request.user),
            "steps": steps,
            "panels": panels,
            "all_done": bool(steps) and all(s.done for s in steps),
        },
    )


@org_page(Perm.MEMBERS_READ)
def members_page(request, org):
    form = MemberAddForm()
    invitations = request.principal.restrict(Invitation.objects.filter(accepted_at__isnull=True))
    if request.method == "POST":
        if not request.principal.has(Perm.MEMBERS_MANAGE):
            return HttpResponseForbidden("Only admins can add members.")
        if "withdraw" in request.POST:
            invitation = page_object(invitations, request.POST["withdraw"])
            services.invitation_withdraw(invitation=invitation, actor=request.principal.actor)
            messages.success(request, f"Withdrew the invitation to {invitation.email}.")
            return redirect("org-members", org_slug=org.slug)
        form = MemberAddForm(request.POST)
        if form.is_valid():
            added = call_service(
                form,
                services.member_add,
                org=org,
                actor=request.principal.actor,
                actor_role=request.principal.role,
                **form.cleaned_data,
            )
            if added is not None:
                messages.success(request, f"Invited {form.cleaned_data['email']}.")
                return redirect("org-members", org_slug=org.slug)
    return render_page(
        request,
        "orgs/members.html",
        {
            "members": request.principal.restrict(Membership.objects.select_related("user")).order_by("created_at"),
            "invitations": invitations.order_by("created_at"),
            "can_manage": request.principal.has(Perm.MEMBERS_MANAGE),
            "invitation_days": f"{settings.DEPLITE_INVITATION_EXPIRY_SECONDS / 86400:g}",
            "form": form,
        },
    )


_NEW_TOKEN_SESSION_KEY = "deplite.new_token"  # noqa: S105 (a session key name)


@org_page(Perm.TOKENS_MANAGE)
def tokens_page(request, org):
    tokens_qs = request.principal.restrict(ApiToken.objects.select_related("created_by"))
    form = ApiTokenForm()
    if request.method == "POST" and "revoke" in request.POST:
        token = page_object(tokens_qs, request.POST["revoke"])
        services.token_revoke(token=token, actor=request.principal.actor)
        messages.success(request, f"Revoked {token.name}.")
        return redirect("org-tokens", org_slug=org.slug)
    if request.method == "POST":
        form = ApiTokenForm(request.POST)
        data = ApiTokenCreateInput(data=form.wire_data()) if form.is_valid() else None
        if data is not None and not data.is_valid():
            add_api_errors(form, data.errors)
        elif data is not None:
            created = call_service(
                form, services.token_create, org=org, actor=request.principal.actor, **data.service_kwargs()
            )
            if created is not None:
                token, raw = created
                # Post/redirect/get, so a reload cannot mint a second token.
                stash_secret(request, _NEW_TOKEN_SESSION_KEY, obj_id=token.id, secret=raw)
                return redirect("org-tokens", org_slug=org.slug)
    created = None
    shown = pop_secret(request, _NEW_TOKEN_SESSION_KEY, tokens_qs)
    if shown is not None:
        created = {"token": shown[0], "raw": shown[1]}
    return render_page(request, "orgs/tokens.html", {"tokens": tokens_qs, "form": form, "created": created})


@org_page(Perm.AUDIT_READ)
def audit_page(request, org):
    return render_page(
        request, "orgs/audit.html", {"events": request.principal.restrict(AuditEvent.objects.all())[:200]}
    )
