"""What every API request body shares: unknown fields and NUL bytes are refused by name, numbers are
numbers (not booleans, not other scripts' digits).

Every serializer that parses a request body derives from InputSerializer or InputModelSerializer
(tests/api/test_strict_input.py checks every request body of the schema), and declares its
numbers with the strict fields below.
"""

import difflib

from rest_framework import serializers
from rest_framework.exceptions import ErrorDetail

from config.input import ASCII_DECIMAL, ASCII_INTEGER, MAX_ID, nul_path

UNKNOWN_FIELD = "unknown_field"
# Form tokens a browser (or DRF's browsable API) adds to a form; they are not the client's fields.
FORM_CONTROL_FIELDS = {"csrfmiddlewaretoken"}


def unknown_field_message(name: str, accepted: list[str], renamed: dict[str, str]) -> str:
    better = renamed.get(name) or next(iter(difflib.get_close_matches(name, accepted, n=1, cutoff=0.8)), None)
    if better:
        return f"Unknown field: did you mean {better}?"
    return f"Unknown field. Accepted fields: {', '.join(accepted)}."


class StrictInputMixin:
    """Refuses a body naming a field the serializer does not take, or holding a NUL byte anywhere.

    DRF drops unknown fields silently: a misspelt option ("questions_per_tag") then starts a run
    with the default. `renamed_fields` maps names clients are known to use to the right one.
    """

    renamed_fields: dict[str, str] = {}

    def to_internal_value(self, data):
        if hasattr(data, "keys"):
            errors = {}
            accepted = [name for name, field in self.fields.items() if not field.read_only]
            for key in data.keys():
                values = data.getlist(key) if hasattr(data, "getlist") else [data[key]]
                found = f"the field name {key!r}" if "\x00" in str(key) else \
                    nul_path(values[0] if len(values) == 1 else values, key)
                if found:
                    errors[key] = [ErrorDetail(f"Text cannot contain NUL bytes (\\x00): found one in {found}.",
                                               code="null_characters_not_allowed")]
                elif key not in accepted and key not in FORM_CONTROL_FIELDS:
                    errors[key] = [ErrorDetail(unknown_field_message(key, accepted, self.renamed_fields),
                                               code=UNKNOWN_FIELD)]
            if errors:
                raise serializers.ValidationError(errors)
        return super().to_internal_value(data)


class InputSerializer(StrictInputMixin, serializers.Serializer):
    """Base of every request body serializer."""


class StrictIntegerField(serializers.IntegerField):
    """A whole number: a JSON number or a string of ASCII digits. DRF's IntegerField takes "١" as 1."""

    def to_internal_value(self, data):
        if isinstance(data, bool) or (isinstance(data, str) and not ASCII_INTEGER.fullmatch(data.strip())) \
                or not isinstance(data, int | float | str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictFloatField(serializers.FloatField):
    """A finite number: a JSON number or an ASCII decimal string. DRF's FloatField takes `true` as 1.0."""

    def to_internal_value(self, data):
        if isinstance(data, bool) or (isinstance(data, str) and not ASCII_DECIMAL.fullmatch(data.strip())) \
                or not isinstance(data, int | float | str):
            self.fail("invalid")
        return super().to_internal_value(data)


class IdField(StrictIntegerField):
    """A row id: 1 to PostgreSQL's bigint maximum."""

    def __init__(self, **kwargs):
        super().__init__(min_value=1, max_value=MAX_ID, **kwargs)


class StrictPrimaryKeyRelatedField(serializers.PrimaryKeyRelatedField):
    """A related row by id; the id is checked like IdField before the lookup (which would take "١" as 1)."""

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int | str):
            self.fail("incorrect_type", data_type=type(data).__name__)
        if isinstance(data, str) and not (data.strip().isascii() and data.strip().isdigit()):
            self.fail("incorrect_type", data_type=type(data).__name__)
        if not 0 < int(data) <= MAX_ID:
            self.fail("does_not_exist", pk_value=data)
        return super().to_internal_value(data)


def _strict_mapping():
    mapping = dict(serializers.ModelSerializer.serializer_field_mapping)
    for model_field, field in mapping.items():
        if field is serializers.IntegerField:
            mapping[model_field] = StrictIntegerField
        elif field is serializers.FloatField:
            mapping[model_field] = StrictFloatField
    return mapping


class InputModelSerializer(StrictInputMixin, serializers.ModelSerializer):
    """Base of every model serializer that takes a request body: model numbers and foreign keys
    map to the strict fields."""

    serializer_field_mapping = _strict_mapping()
    serializer_related_field = StrictPrimaryKeyRelatedField
