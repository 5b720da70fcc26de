"""OpenAPI pieces every API view shares: the Api-Key security scheme and the error answers.

Imported by the view modules, so drf-spectacular sees the extension before it builds the
schema.
"""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse

from creditledger.api.auth import PublicRead
from creditledger.api.serializers_read import ErrorSerializer


class PlatformKeyScheme(OpenApiAuthenticationExtension):
    target_class = "creditledger.api.auth.PlatformKeyAuthentication"
    name = "ApiKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "Send `Authorization: Api-Key <key>`. A key belongs to one platform and "
            "holds scopes (`status:read`, `shops:write`, `reports:write`).",
        }


_DESCRIPTIONS = {
    400: "Bad input: `fields` names each input at fault.",
    401: "No key, an unknown key, or a revoked or expired key.",
    403: "The key lacks the scope this call needs.",
    404: "Not found.",
    409: "The cursor is beyond the ledger's head (`head` holds the head's seq).",
    413: "The body is too large: refused from its Content-Length before it was read.",
    415: "Unsupported content type.",
    422: "The Idempotency-Key was used for a different request.",
    429: "Too many requests for this key: wait `Retry-After` seconds.",
    503: "The database is briefly unreachable (a restart, a failover): retry after `Retry-After` seconds.",
}

RETRY_AFTER = OpenApiParameter(
    "Retry-After",
    OpenApiTypes.INT,
    OpenApiParameter.HEADER,
    response=[429, 503],
    description="Seconds to wait before the next call.",
)


def errors(*statuses: int, **descriptions: str) -> dict[int, OpenApiResponse]:
    """Error responses for `extend_schema(responses=...)`, all in the one error shape.

    401, 429 and 503 are always included: every call needs a key, every key is throttled, and
    any call can meet a database failover.
    Override a description with e.g. `errors(404, e404="No trader with this code.")`.
    """
    wanted = sorted({*statuses, 401, 429, 503})
    return {
        status: OpenApiResponse(
            ErrorSerializer, description=descriptions.get(f"e{status}", _DESCRIPTIONS[status])
        )
        for status in wanted
    }


RATE_LIMIT_HEADERS = {
    "RateLimit-Policy": {
        "description": 'The key\'s rate limit: `"apikey";q=<requests>;w=<seconds>` '
        "(IETF httpapi RateLimit header fields).",
        "schema": {"type": "string"},
    },
    "RateLimit": {
        "description": 'Where this key stands: `"apikey";r=<left in this window>;t=<seconds to its end>`.',
        "schema": {"type": "string"},
    },
}


def add_rate_limit_headers(result, generator, request, public):
    """drf-spectacular postprocessing hook: every answer to a keyed call carries the rate
    limit's headers (401s do not: there is no key to count)."""
    result.setdefault("components", {}).setdefault("headers", {}).update(RATE_LIMIT_HEADERS)
    refs = {name: {"$ref": f"#/components/headers/{name}"} for name in RATE_LIMIT_HEADERS}
    for path, operations in result.get("paths", {}).items():
        if not path.startswith("/api/v1/"):
            continue
        for operation in operations.values():
            if not isinstance(operation, dict) or not operation.get("security"):
                continue
            for status, response in operation.get("responses", {}).items():
                if status != "401":
                    response.setdefault("headers", {}).update(refs)
    return result


NO_NUL = r"^[^\x00]*$"
NOT_BLANK = r"^[^\x00]*\S[^\x00]*$"


def state_cross_field_rules(result, generator, request, public):
    """drf-spectacular postprocessing hook: the rules a serializer checks across fields, where
    OpenAPI can state them. A bulk lookup needs a body with at least one code or shop id."""
    lookup = result.get("components", {}).get("schemas", {}).get("LookupRequestRequest")
    if lookup is not None:
        lookup["anyOf"] = [
            {"required": ["codes"], "properties": {"codes": {"minItems": 1}}},
            {"required": ["shop_ids"], "properties": {"shop_ids": {"minItems": 1}}},
        ]
        # No NUL anywhere; a shop id is trimmed, so one of only spaces is no id (codes are
        # judged item by item: a bad one is an `invalid` result, not a 400).
        lookup["properties"]["codes"]["items"]["pattern"] = NO_NUL
        lookup["properties"]["shop_ids"]["items"]["pattern"] = NOT_BLANK
    paths = result.get("paths", {})
    for path, _regex, method, callback in generator.endpoints:  # PublicRead: a key is optional
        if issubclass(getattr(callback, "cls", object), PublicRead) and path in paths:
            paths[path][method.lower()]["security"] = [{}, {"ApiKey": []}]
    operation = paths.get("/api/v1/traders/lookup", {}).get("post")
    if operation is not None and "requestBody" in operation:
        operation["requestBody"]["required"] = True
    for parameter in paths.get("/api/v1/traders/", {}).get("get", {}).get("parameters", []):
        if parameter.get("name") == "shop":
            parameter["schema"]["pattern"] = NOT_BLANK
    declare = result.get("components", {}).get("schemas", {}).get("ShopsDeclareRequest")
    if declare is not None:
        declare["properties"]["items"].update(minItems=1, maxItems=settings.API_BULK_LIMIT)
    return result
