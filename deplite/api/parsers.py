"""The API reads every request body as JSON, whatever its Content-Type.

The public docs' curl snippets send JSON with `-d` and no header, so curl labels them
`application/x-www-form-urlencoded`; those calls must work verbatim.
Keys arrive camelCase and leave the parser snake_case (deplite.api.camel), user data aside.
"""

import json

from rest_framework.exceptions import ParseError
from rest_framework.parsers import BaseParser

from .camel import underscore


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
        if not isinstance(data, dict):
            raise ParseError("The request body must be a JSON object.")
        return underscore(data)
