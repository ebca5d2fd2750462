"""The API reads every request body as JSON, whatever its Content-Type.

The public docs' curl snippets send JSON with `-d` and no header, so curl labels them
`application/x-www-form-urlencoded`; those calls must work verbatim.
Keys arrive camelCase and leave the parser snake_case (djangorestframework-camel-case's
`underscoreize`, deplite.api.camel), user data aside.
"""

import json

from rest_framework.exceptions import ParseError
from rest_framework.parsers import BaseParser

from .camel import underscoreize, wire_names_only


class JSONAnyContentTypeParser(BaseParser):
    media_type = "*/*"

    def parse(self, stream, media_type=None, parser_context=None):
        raw = stream.read() if stream is not None else b""
        if not raw.strip():
            return {}
        try:
            data = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise ParseError("The request body is not valid JSON.") from exc
        except RecursionError:
            # Nesting deep enough to exhaust the parser's stack (~1,000 levels).
            raise ParseError(f"The request body is nested too deeply (more than {MAX_DEPTH} levels).") from None
        if not isinstance(data, dict):
            raise ParseError("The request body must be a JSON object.")
        if _depth_exceeds(data, MAX_DEPTH):
            # Shallower than the parser's limit but still deeper than any API body: refused
            # here so no key conversion, validator, renderer or log line ever recurses through it.
            raise ParseError(f"The request body is nested too deeply (more than {MAX_DEPTH} levels).")
        return underscoreize(wire_names_only(data))


# No API body comes close: params and labels are flat, the deepest is two or three levels.
MAX_DEPTH = 32


def _depth_exceeds(value, limit: int) -> bool:
    """Whether `value` nests lists/objects more than `limit` deep (iterative: no recursion)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False
