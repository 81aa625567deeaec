"""Parsing of user input shared by the API, the review UI and the admin.

Ids and numbers are ASCII only: Python's str.isdigit() takes "²" (which int() then refuses, a
500) and int() takes Arabic-Indic "١" or "1_0" (read as another row than the user typed). Text
reaching PostgreSQL holds no NUL byte, which a text column cannot store.
"""

import math
import re

from datasets.services import DatasetError

MAX_ID = 2**63 - 1  # PostgreSQL's bigint, the type of every primary key
ASCII_INTEGER = re.compile(r"[+-]?[0-9]+")
ASCII_DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
NUL = "\x00"


def id_parse(value, name: str) -> int:
    """A row id from a query parameter, a form field or a JSON string: ASCII digits only, 1 to 2**63-1.

    Anything else is a DatasetError (400 in the API) naming the parameter.
    """
    text = str(value).strip() if isinstance(value, str | int) and not isinstance(value, bool) else None
    if text is None or not text.isascii() or not text.isdigit() or not 0 < int(text) <= MAX_ID:
        raise DatasetError(f"{name} must be a positive whole number in ASCII digits, got {value!r}.",
                           code="invalid_parameter")
    return int(text)


def ids_parse(raw: str, name: str, *, limit: int) -> list[int]:
    """Comma-separated ids (empty parts skipped), at most `limit` of them kept."""
    return [id_parse(part, name) for part in raw.split(",") if part.strip()][:limit]


def number_parse(value, name: str) -> float:
    """A finite decimal number in ASCII (e.g. a confidence bound); no nan, inf or other digits."""
    text = value.strip() if isinstance(value, str) else ""
    if not ASCII_DECIMAL.fullmatch(text) or not math.isfinite(float(text)):
        raise DatasetError(f"{name} must be a number, got {value!r}.", code="invalid_parameter")
    return float(text)


def nul_path(value, path: str) -> str | None:
    """Where a NUL byte sits in a JSON-like value (a string, or a key or item of a dict or list), or None."""
    if isinstance(value, str):
        return path if NUL in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(key, str) and NUL in key:
                return f"a key of {path}"
            found = nul_path(item, f"{path}.{key}")
            if found:
                return found
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            found = nul_path(item, f"{path}[{index}]")
            if found:
                return found
    return None
