"""Logging in to the API: a JWT pair for an email and password (rate-limited), its rotating refresh,
and "log out everywhere"."""

from __future__ import annotations

from django.contrib.auth import authenticate
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_simplejwt.serializers import TokenRefreshSerializer
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.views import TokenRefreshView

from deplite.api.errors import Forbidden, RateLimited, Unauthenticated
from deplite.api.fields import StrictCharField

from .. import ratelimit, services
from ..authentication import EPOCH_CLAIM, TokenPrincipalUser, UserRefreshToken
from ..models import User


class TokenObtainInput(serializers.Serializer):
    email = serializers.EmailField()
    password = StrictCharField(max_length=4096, trim_whitespace=False)


class TokenPairOutput(serializers.Serializer):
    access = StrictCharField()
    refresh = StrictCharField()


class TokenObtainView(APIView):
    """`POST /api/auth/token {email, password}` → `{access, refresh}`; failures are rate-limited
    per account and address."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(
        request=TokenObtainInput,
        responses={
            200: TokenPairOutput,
            401: OpenApiResponse(description="The email or password is incorrect."),
            429: OpenApiResponse(description="Too many failed logins for this account from this address."),
        },
    )
    def post(self, request):
        data = TokenObtainInput(data=request.data)
        data.is_valid(raise_exception=True)
        email = data.validated_data["email"].lower()
        # The same per-account-and-address limit as the site and admin logins (orgs.backends).
        if ratelimit.login_limited(request, email):
            raise RateLimited("Too many failed logins. Try again in a minute.")
        user = authenticate(request, email=email, password=data.validated_data["password"])
        if user is None or not user.is_active:
            raise Unauthenticated("The email or password is incorrect.", code="invalid_credentials")
        refresh = UserRefreshToken.for_user(user)
        return Response({"access": str(refresh.access_token), "refresh": str(refresh)})


class RotatingRefreshSerializer(TokenRefreshSerializer):
    """simplejwt's refresh (rotate, blacklist the old one), refusing a token whose user is
    gone or whose login ended ("log out everywhere", password change) with a 401."""

    token_class = UserRefreshToken

    def validate(self, attrs):
        try:
            data = super().validate(attrs)
        except User.DoesNotExist:
            raise Unauthenticated("The refresh token is invalid or has expired.", code="token_not_valid") from None
        refresh = self.token_class(data["refresh"], verify=False)
        user = User.objects.filter(pk=refresh.get(api_settings.USER_ID_CLAIM)).first()
        if user is None or refresh.get(EPOCH_CLAIM, 0) != user.auth_epoch:
            refresh.blacklist()
            raise Unauthenticated("This login has ended. Log in again.", code="token_not_valid")
        return data


class RefreshView(TokenRefreshView):
    """`POST /api/auth/token/refresh {refresh}` → `{access, refresh}`: a refresh token works
    once; the answer carries its successor."""

    authentication_classes: list = []
    serializer_class = RotatingRefreshSerializer


class LogoutEverywhereView(APIView):
    """`POST /api/auth/logout-everywhere`: end every login of the caller — all refresh
    tokens, access tokens and web sessions, this one included."""

    @extend_schema(request=None, responses={204: None})
    def post(self, request):
        services.user_sessions_end(user=signed_in_person(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


def signed_in_person(request):
    """The signed-in person; an API token is not one."""
    if isinstance(request.user, TokenPrincipalUser):
        raise Forbidden("Invitations are accepted by a signed-in person, not an API token.")
    return request.user
