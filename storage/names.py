"""What a file name, content type, bucket, region and key prefix may look like, and the object key.

Bad values are refused (400) rather than silently rewritten: a caller who sends a path as
a file name should learn that it is not one.
"""

from __future__ import annotations

import re
import unicodedata
import uuid

MAX_FILE_NAME_BYTES = 255
# Control, format (bidi overrides, zero-width), line/paragraph separators: invisible or
# misleading in a file name and in a Content-Disposition header.
_FORBIDDEN_CATEGORIES = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}
_MEDIA_WORD = r"[A-Za-z0-9!#$&^_.+-]{1,127}"
CONTENT_TYPE_RE = re.compile(
    rf"^{_MEDIA_WORD}/{_MEDIA_WORD}(\s*;\s*{_MEDIA_WORD}=(?:{_MEDIA_WORD}|\"[^\"\\\x00-\x1f\x7f]*\"))*$"
)
# The regexes below are also the schema's `pattern` for these fields (deplite.api.fields.DocumentedPattern),
# so they are written in the subset that JSON Schema shares with Python (no flags, no lookarounds;
# `\Z`, which the schema writes as `$`, since Python's `$` also matches before a final newline).
BUCKET_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.\-_]{1,61}[A-Za-z0-9]\Z")
REGION_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,31}\Z")
_PREFIX_SEGMENT = r"[A-Za-z0-9!\-_.*'()=+,@]{1,100}"
_PREFIX_SEGMENT_RE = re.compile(rf"^{_PREFIX_SEGMENT}$")
# Segments separated by single slashes, optionally ending in one (blank is allowed too: no prefix).
PREFIX_RE = re.compile(rf"^\s*{_PREFIX_SEGMENT}(?:/{_PREFIX_SEGMENT})*/?\s*\Z")
ACCESS_KEY_RE = re.compile(r"^[\x21-\x7e]{1,128}\Z")
SECRET_KEY_RE = re.compile(r"^[^\x00-\x1f\x7f]{1,256}\Z")
# What a pattern can say of a file name: no slash, backslash or control character, not blank.
# The rule also refuses '..', invisible Unicode (format, private-use, unassigned) and over 255 UTF-8 bytes.
FILE_NAME_RE = re.compile(r"^[^/\\\x00-\x1f\x7f]*[^/\\\x00-\x20\x7f][^/\\\x00-\x1f\x7f]*\Z")


def clean_file_name(value: str) -> str:
    """The file name as stored, or ValueError with the reason."""
    name = unicodedata.normalize("NFC", value).strip()
    if not name:
        raise ValueError("must not be empty.")
    if "/" in name or "\\" in name:
        raise ValueError("must be a name, not a path (no / or \\).")
    if ".." in name or name == ".":
        raise ValueError("must not contain '..' or be '.'.")
    if any(unicodedata.category(c) in _FORBIDDEN_CATEGORIES for c in name):
        raise ValueError("must not contain control or invisible characters.")
    if len(name.encode("utf-8")) > MAX_FILE_NAME_BYTES:
        raise ValueError(f"must be at most {MAX_FILE_NAME_BYTES} bytes in UTF-8.")
    return name


def clean_content_type(value: str) -> str:
    value = value.strip()
    if len(value) > 255 or not CONTENT_TYPE_RE.match(value):
        raise ValueError("must be a media type such as application/gzip.")
    return value


def clean_bucket(value: str) -> str:
    if not BUCKET_RE.match(value) or ".." in value:
        raise ValueError("must be 3–63 letters, digits, dots, hyphens or underscores.")
    return value


def clean_region(value: str) -> str:
    if value and not REGION_RE.match(value):
        raise ValueError("must look like ap-northeast-2 (or auto, or empty).")
    return value


def clean_prefix(value: str) -> str:
    """A key prefix such as `builds/` or `team-a/deplite-inputs/`; stored with a trailing slash."""
    value = value.strip()
    if not value:
        return ""
    if len(value) > 200:
        raise ValueError("must be at most 200 characters.")
    segments = value.rstrip("/").split("/")
    if not all(_PREFIX_SEGMENT_RE.match(s) and s not in (".", "..") for s in segments):
        raise ValueError("must be path segments of letters, digits and -_.*'()=+,@ separated by single slashes.")
    return "/".join(segments) + "/"


def clean_access_key(value: str) -> str:
    if not ACCESS_KEY_RE.match(value):
        raise ValueError("must be 1–128 printable characters without spaces.")
    return value


def clean_secret_key(value: str) -> str:
    if not SECRET_KEY_RE.match(value):
        raise ValueError("must be 1–256 characters without control characters.")
    return value


def object_key(*, prefix: str, org_id: uuid.UUID, file_id: uuid.UUID, file_name: str) -> str:
    """`<prefix>deplite/<org uuid>/<file uuid>/<fileName>`: unique per file, readable in the bucket."""
    return f"{prefix}deplite/{org_id}/{file_id}/{file_name}"
