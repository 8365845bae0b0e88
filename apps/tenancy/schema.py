"""OpenAPI description of Bulwark's bearer tokens, so the schema documents how to authenticate."""
from drf_spectacular.extensions import OpenApiAuthenticationExtension


class TenantTokenScheme(OpenApiAuthenticationExtension):
    target_class = "apps.tenancy.authentication.TenantTokenAuthentication"
    name = "BulwarkToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "bwk_<prefix>_<secret>",
            "description": "An API token of one tenant; its role decides what it may do.",
        }
