"""The OpenAPI schema's error answers, documented once for every operation.

Every refusal has the one shape of `config.errors`; the statuses an operation can answer follow from
what it is: any request can be refused as invalid (400) or meet an unreachable database (503), a
request for a signed-in user's data can be unauthenticated (401) or not allowed in the role (403),
an address naming an object or a page can find none (404), a body can be too large (413). Views document the
statuses of their own rules (409, 429) and this hook gives them the error shape too.
"""

from typing import Any

from rest_framework.permissions import AllowAny

from config.errors import DATABASE_RETRY_AFTER

ERROR_REF = {"$ref": "#/components/schemas/Error"}
ERROR_SCHEMA = {
    "type": "object",
    "description": "The one shape of every refusal.",
    "properties": {
        "detail": {"type": "string", "description": "What went wrong and what to do next, in words."},
        "code": {"type": "string", "description": "Stable for programs, e.g. `invoice_paid`."},
        "fields": {
            "type": "object",
            "description": "Each invalid input's messages.",
            "additionalProperties": {"type": "array", "items": {"type": "string"}},
        },
        "extra": {
            "type": "object",
            "description": "The figures a rule was checked against.",
            "additionalProperties": True,
        },
    },
    "required": ["detail", "code"],
    "additionalProperties": False,
}
DESCRIPTIONS = {
    "400": "Invalid input: `detail` says why, `fields` names each invalid input.",
    "401": "Not signed in, or the token expired or was revoked.",
    "403": "The current role may not do this.",
    "404": "No such object for this caller.",
    "413": "The request body is over the upload limit.",
    "503": "The database, or for work done by the workers the task queue, cannot be reached: nothing "
    f"was done; retry after `Retry-After` seconds ({DATABASE_RETRY_AFTER} for the database).",
}


def _statuses(path: str, operation: dict, view: Any) -> set[str]:
    statuses = {"400", "401", "503"}
    if not any(permission is AllowAny for permission in getattr(view, "permission_classes", [])):
        statuses.add("403")
    # A page past the last is a 404 too (DRF's page number pagination).
    if "{" in path or any(parameter.get("name") == "page" for parameter in operation.get("parameters", [])):
        statuses.add("404")
    if "requestBody" in operation:
        statuses.add("413")
    return statuses | {status for status in operation["responses"] if status.startswith(("4", "5"))}


def document_errors(result: dict, generator: Any, request: Any, public: bool) -> dict:
    """drf-spectacular postprocessing hook: every operation's error answers, in the error shape."""
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    views = {(path, method.lower()): callback.cls for path, _, method, callback in generator.endpoints}
    for path, operations in result["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            for status in sorted(_statuses(path, operation, views.get((path, method)))):
                response = responses.setdefault(status, {"description": DESCRIPTIONS.get(status, "")})
                response["content"] = {"application/json": {"schema": ERROR_REF}}
                if status == "503":
                    response["headers"] = {"Retry-After": {"schema": {"type": "integer"}}}
    return result
