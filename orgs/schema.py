"""OpenAPI descriptions of Deplite's authentication schemes (drf-spectacular extensions)."""

from drf_spectacular.contrib.rest_framework_simplejwt import SimpleJWTScheme
from drf_spectacular.extensions import OpenApiAuthenticationExtension


class ApiTokenScheme(OpenApiAuthenticationExtension):
    target_class = "orgs.authentication.ApiTokenAuthentication"
    name = "apiToken"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "bearerFormat": "tk_…", "description": "An API token (tk_…)."}


class DepliteJWTScheme(SimpleJWTScheme):
    target_class = "orgs.authentication.JWTAuthentication"
    name = "jwtAuth"
