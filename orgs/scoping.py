"""The single org-scoping mechanism (STYLE.md §2).

Every `/api/orgs/<orgId>/…` view derives from `OrgScopedViewSet`. It resolves the org
from the URL (slug or UUID) once, turns the authenticated caller into a `Principal`
(a member with a role, or an API token with a scope), checks the permission the action
declares in `permission_map`, and builds every queryset as "this org's rows, narrowed
to what this principal may see". Another org's object — or an org the caller does not
belong to — is a 404, never a 403.

Subclasses cannot bypass it by accident: overriding `get_queryset`, `get_object`,
`initial` or the permission hooks raises at import time. They describe their rows with
`queryset` and may refine it in `safely_get_queryset` (select_related, filters from the
query string); objects named in a request body are fetched with `self.org_objects(Model)`.

Views whose URL names no org (the trigger run endpoint, pages) resolve the principal with
`principal_for_org(request, org_or_lookup)`: the same function the base uses.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from django.db.models import Model, QuerySet
from rest_framework import viewsets
from rest_framework.exceptions import MethodNotAllowed

from deplite import logs
from deplite.api.errors import Forbidden, NotFound

from . import ratelimit
from .actors import Actor, ActorKind
from .authentication import TokenPrincipalUser
from .models import ApiToken, Membership, Organization, TokenScope, User
from .permissions import ROLE_PERMISSIONS, USER_ONLY_PERMISSIONS, token_permissions


@dataclass(frozen=True)
class Principal:
    org: Organization
    permissions: frozenset[str]
    user: User | None = None
    membership: Membership | None = None
    token: ApiToken | None = None
    ip: str | None = field(default=None, compare=False)

    @property
    def role(self) -> str | None:
        return self.membership.role if self.membership else None

    def has(self, perm: str) -> bool:
        return perm in self.permissions

    def restrict(self, queryset: QuerySet) -> QuerySet:
        """This org's rows of `queryset`, narrowed to a storage/trigger token's objects.

        A model opts in to narrowing by naming the lookup to its binding or trigger
        (`token_binding_field` / `token_trigger_field`); a model that names neither is
        invisible to narrowed tokens.
        """
        queryset = queryset.filter(org=self.org)
        token = self.token
        if token is None or token.scope_type == TokenScope.ORG:
            return queryset
        model = queryset.model
        if token.scope_type == TokenScope.STORAGE:
            lookup, allowed = getattr(model, "token_binding_field", None), token.binding_ids
        else:
            lookup, allowed = getattr(model, "token_trigger_field", None), token.trigger_ids
        if lookup is None:
            return queryset.none()
        return queryset.filter(**{f"{lookup}__in": _uuids(allowed)})

    def sees(self, obj: Model) -> bool:
        """Whether `restrict()` keeps this object: decided in memory when the model's token
        lookup is one of its own fields (the run endpoint's trigger), by a query otherwise."""
        if getattr(obj, "org_id", None) != self.org.pk:
            return False
        token = self.token
        if token is None or token.scope_type == TokenScope.ORG:
            return True
        model = type(obj)
        if token.scope_type == TokenScope.STORAGE:
            lookup, allowed = getattr(model, "token_binding_field", None), token.binding_ids
        else:
            lookup, allowed = getattr(model, "token_trigger_field", None), token.trigger_ids
        if lookup is None:
            return False
        if "__" in lookup:
            return self.restrict(model._default_manager.filter(pk=obj.pk)).exists()
        return (obj.pk if lookup == "pk" else getattr(obj, lookup)) in set(_uuids(allowed))

    @property
    def actor(self) -> Actor:
        if self.token is not None:
            return Actor(
                kind=ActorKind.TOKEN,
                id=str(self.token.id),
                label=f"{self.token.name} ({self.token.prefix}…)",
                ip=self.ip,
                token=self.token,
                user=None,
            )
        return Actor.for_user(self.user, ip=self.ip)


def _uuids(values) -> list[uuid.UUID]:
    out = []
    for value in values or ():
        try:
            out.append(uuid.UUID(str(value)))
        except ValueError:
            continue
    return out


def org_lookup(value: str) -> dict:
    """Slug or UUID → the filter that finds the org."""
    try:
        return {"id": uuid.UUID(value)}
    except (ValueError, AttributeError, TypeError):
        return {"slug": value}


def principal_for_org(request, org: Organization | str) -> Principal:
    """The caller, as seen by one organisation. NotFound if they do not belong to it."""
    user = request.user
    ip = ratelimit.client_ip(request)
    if isinstance(user, TokenPrincipalUser):
        token = user.token
        token_org = token.org
        if isinstance(org, Organization):
            matches = org.pk == token_org.pk
        else:
            lookup = org_lookup(org)
            matches = str(token_org.id) == str(lookup["id"]) if "id" in lookup else token_org.slug == lookup["slug"]
        if not matches:
            raise NotFound("Organization not found.")
        return Principal(org=token_org, permissions=token_permissions(token), token=token, ip=ip)
    if not getattr(user, "is_authenticated", False):
        raise NotFound("Organization not found.")
    memberships = Membership.objects.select_related("org").filter(user=user)
    if isinstance(org, Organization):
        memberships = memberships.filter(org=org)
    else:
        memberships = memberships.filter(**{f"org__{k}": v for k, v in org_lookup(org).items()})
    membership = memberships.first()
    if membership is None:
        raise NotFound("Organization not found.")
    return Principal(
        org=membership.org,
        permissions=ROLE_PERMISSIONS.get(membership.role, frozenset()),
        user=user,
        membership=membership,
        ip=ip,
    )


_SEALED = (
    "initial",
    "get_queryset",
    "get_object",
    "get_permissions",
    "check_permissions",
    "check_object_permissions",
)


class OrgScopedViewSet(viewsets.GenericViewSet):
    """Base of every `/api/orgs/<org_id>/…` view. See the module docstring."""

    #: action name → permission (orgs.permissions.Perm). An action missing here is refused.
    permission_map: dict[str, str] = {}
    #: actions only a signed-in person may take (approve, lock, edit an environment's rules): an
    #: API token gets 403 `person_required` here, before the view runs.
    person_only_actions: frozenset[str] = frozenset()
    lookup_field = "pk"
    http_method_names = ["get", "post", "patch", "delete", "head"]

    org: Organization
    principal: Principal

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        for name in _SEALED:
            if name in cls.__dict__:
                raise TypeError(
                    f"{cls.__name__}.{name} would bypass org scoping; use safely_get_queryset / permission_map instead."
                )

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)  # authentication (401) and throttles
        self.principal = principal_for_org(request, kwargs.get("org_id", ""))
        self.org = self.principal.org
        logs.bind(org=self.org.slug)
        if self.action is None:
            raise MethodNotAllowed(request.method)
        perm = self.permission_map.get(self.action)
        if perm in USER_ONLY_PERMISSIONS and self.principal.token is not None:
            raise Forbidden("API tokens cannot manage members or create credentials; sign in as an owner or admin.")
        if self.action in self.person_only_actions and self.principal.token is not None:
            raise Forbidden("Only a signed-in person may do this; an API token may not.", code="person_required")
        if perm is None or not self.principal.has(perm):
            raise Forbidden()

    def safely_get_queryset(self, queryset: QuerySet) -> QuerySet:
        """Refine the org-scoped queryset (joins, query-string filters). Never widen it."""
        return queryset

    def get_queryset(self) -> QuerySet:
        queryset = self.principal.restrict(self.queryset.all())
        return self.safely_get_queryset(queryset)

    def get_object(self) -> Model:
        value = self.kwargs.get(self.lookup_url_kwarg or self.lookup_field)
        if self.lookup_field == "pk":
            try:
                lookup = {"pk": uuid.UUID(str(value))}
            except ValueError:
                raise NotFound() from None
        else:  # a name unique within the org (an environment's): still only within this org's rows
            lookup = {self.lookup_field: str(value)}
        obj = self.filter_queryset(self.get_queryset()).filter(**lookup).first()
        if obj is None:
            raise NotFound()
        return obj

    def org_objects(self, model: type[Model]) -> QuerySet:
        """`model`'s rows of this org that this principal may use (for ids in bodies)."""
        return self.principal.restrict(model._default_manager.all())

    @property
    def actor(self) -> Actor:
        return self.principal.actor

    def get_serializer_context(self):
        context = super().get_serializer_context()
        if hasattr(self, "principal"):
            context["org"] = self.org
            context["principal"] = self.principal
        return context
