"""The API's JSON parser: DRF's, refusing at the edge what no endpoint can use.

A body nested deeper than any endpoint needs is refused before a serializer (or the parser itself,
which recurses) can run out of stack, and a NUL character anywhere in a key or a string is refused
because PostgreSQL cannot store or compare text holding one.
"""

from typing import Any

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from rest_framework import exceptions
from rest_framework.parsers import JSONParser

# The deepest body an endpoint takes is a list of readings, each an object of plain values (depth 2).
MAX_DEPTH = 32
NUL = "\x00"
NUL_MESSAGE = gettext_lazy("Remove the NUL character (\\u0000): text may not contain one.")


class SafeJSONParser(JSONParser):
    def parse(self, stream: Any, media_type: str | None = None, parser_context: dict | None = None) -> Any:
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError as exc:
            raise _too_deep() from exc
        refuse_unusable(data)
        return data


def _too_deep() -> exceptions.ParseError:
    return exceptions.ParseError(
        _("The JSON body is nested too deeply: at most %(depth)s levels of lists and objects.")
        % {"depth": MAX_DEPTH},
        code="too_deep",
    )


def refuse_unusable(data: Any) -> None:
    """Walk `data` without recursion: too deep a nesting or a NUL anywhere is a 400 naming the place."""
    pending: list[tuple[Any, str, int]] = [(data, "", 0)]
    while pending:
        value, where, depth = pending.pop()
        if isinstance(value, str):
            if NUL in value:
                raise exceptions.ValidationError({where or "non_field_errors": [NUL_MESSAGE]})
            continue
        if not isinstance(value, dict | list):
            continue
        if depth >= MAX_DEPTH:
            raise _too_deep()
        if isinstance(value, dict):
            for key, item in value.items():
                place = f"{where}.{key}" if where else str(key)
                if NUL in key:
                    raise exceptions.ValidationError({place.replace(NUL, "\\u0000"): [NUL_MESSAGE]})
                pending.append((item, place, depth + 1))
        else:
            pending.extend((item, f"{where}[{index}]", depth + 1) for index, item in enumerate(value))
