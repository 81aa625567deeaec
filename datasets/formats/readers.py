"""Readers for imports: JSONL (the seed schema or any object with a question and an intent), CSV
and Alpaca. A reader yields one ImportRecord per good row and one ImportProblem, with its line
number, per bad one; it never stops at the first problem, so a user fixes a file in one go.

Lines are read as bytes with a length cap, so a 1 GB line costs 1 MiB of memory, not 1 GB.
"""

import csv
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from datasets.formats.table import csv_cell_restore
from datasets.models import QUESTION_TEXT_MAX_CHARS
from datasets.splits import ACCEPTED_SPLIT_NAMES, split_name_normalize

MAX_LINE_BYTES = 1024 * 1024
# An Alpaca JSON array is parsed whole; beyond this size, convert it to JSONL (one object a line).
MAX_ARRAY_BYTES = 64 * 1024 * 1024
BOM = b"\xef\xbb\xbf"
_NUMBERED = re.compile(r"^\d+(\.\d+)*\s+")
# What PostgreSQL text cannot hold: NUL (a JSON "\u0000", or a NUL byte in a CSV) and lone UTF-16
# surrogates (a JSON "\ud800" escape without its pair). Caught here, per line; at COPY time they
# would fail the whole import with a database error.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
# The fields that name a row's intent, as the error about a row without one lists them.
# A row's `source` kept by an import (others become "imported"), and Question.transformation's size.
AUGMENTED_SOURCE = "augmented"
TRANSFORMATION_MAX_CHARS = 200
INTENT_FIELDS = ("intent_path", "intent_hierarchy", "intent_full_name", "intent_number", "intent", "label")


@dataclass
class ImportProblem:
    line: int | None
    message: str

    def as_dict(self) -> dict:
        return {"line": self.line, "message": self.message}


@dataclass
class ImportRecord:
    line: int
    text: str
    # Strings that may name the intent, most specific first: a path, a numbered name, a number, a name.
    intent_names: list[str]
    # The intent's path below the topic, when the row gives one (used to create missing intents).
    intent_path: list[str] = field(default_factory=list)
    status: str | None = None
    # The row's own split (train, validation or test), when it gives one.
    split: str | None = None
    # An augmented question exported by this project (source "augmented") stays augmented, with
    # how it was made; every other row is imported (its run, model or capture are not in a file).
    augmented: bool = False
    transformation: str = ""


def _physical_lines(stream) -> Iterator[tuple[int, str | ImportProblem]]:
    """(line number, decoded line or problem) for every line of a binary stream."""
    number = 0
    while True:
        raw = stream.readline(MAX_LINE_BYTES + 1)
        if not raw:
            return
        number += 1
        if number == 1 and raw.startswith(BOM):
            raw = raw[len(BOM):]
        if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
            size = len(raw)
            while raw and not raw.endswith(b"\n"):  # skip the rest of the line without keeping it
                raw = stream.readline(MAX_LINE_BYTES)
                size += len(raw)
            yield number, ImportProblem(number, f"the line is {size:,} bytes long, over the limit of "
                                                f"{MAX_LINE_BYTES:,}; is this really one question?")
            continue
        try:
            yield number, raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            yield number, ImportProblem(number, f"not UTF-8 (byte 0x{raw[exc.start]:02x} at column {exc.start + 1}); "
                                                "save the file as UTF-8")


def intent_names_from_fields(data: dict, topic_name: str) -> tuple[list[str], list[str]]:
    """Intent names to try and the path below the topic, from whichever intent fields a row has.

    A row that gives a path is matched by its path only: numbers differ between topics, and a
    number that happens to exist here must not send the row to the wrong intent.
    """
    hierarchy = data.get("intent_hierarchy")
    if isinstance(hierarchy, list) and len(hierarchy) > 1 and all(isinstance(h, str) for h in hierarchy):
        # The seed schema's hierarchy always starts with the topic it was exported from.
        path = [h.strip() for h in hierarchy[1:]]
        return [" -> ".join(path)], path
    if isinstance(data.get("intent_path"), str) and data["intent_path"].strip():
        path = [p.strip() for p in data["intent_path"].split("->")]
        if len(path) > 1 and _path_starts_with_topic(path, data.get("intent_number"), topic_name):
            path = path[1:]
        return [" -> ".join(path)], path
    names = [data[key].strip() for key in ("intent_full_name", "intent_number", "intent", "label")
             if isinstance(data.get(key), str) and data[key].strip()]
    # A plain name (`intent`, or a `label` that names the intent) is the path of a root intent when
    # missing intents are created; a numbered name ("2.1 Refunds") gives its name without the number.
    plain = next((data[key].strip() for key in ("intent", "label")
                  if isinstance(data.get(key), str) and data[key].strip()), None)
    path = [_NUMBERED.sub("", plain)] if plain else []
    return names, path


def _path_starts_with_topic(path: list[str], number, topic_name: str) -> bool:
    """Whether an intent_path's first element names a topic rather than a root intent.

    Our exports (CSV and JSONL alike) write the path with the source topic first, and the number
    beside it: "Customer Care -> Billing -> Refunds" with "1.1" has one element more than the
    number has levels, so the first is the topic, whatever it is called; imported into another
    topic, it must not become a root intent. Without a number, only a first element that names
    this topic is taken for it.
    """
    if isinstance(number, str) and re.fullmatch(r"\d+(\.\d+)*", number.strip()):
        return len(path) == number.strip().count(".") + 2
    return path[0].casefold() == topic_name.casefold()


def _fields_found(data: dict) -> str:
    found = ", ".join(repr(key) for key in list(data)[:20]) or "none"
    return f"found {found}"


def _mapped_intent_fields(value: str) -> dict:
    """The intent fields for a value of a column the user named as the intent: a path if it has
    "->", else a name, numbered name or number."""
    return {"intent_path": value} if "->" in value else {"intent": value}


def _unstorable(line: int, field_name: str, value: str) -> ImportProblem | None:
    found = _UNSTORABLE.search(value)
    if found is None:
        return None
    character = found.group()
    what = "a NUL character (U+0000)" if character == "\x00" else f"a lone surrogate (U+{ord(character):04X})"
    return ImportProblem(line, f"field {field_name!r} contains {what} at character {found.start() + 1}, which "
                               "cannot be stored; remove it")


def _record(line: int, data, topic_name: str, text_keys=("question", "text"), *, text_column: str = "",
            intent_column: str = "", intent_fields=INTENT_FIELDS) -> ImportRecord | ImportProblem:
    """One row as an ImportRecord, or the problem that stops it. `text_column` and `intent_column`
    name the user's own columns; otherwise `text_keys` and the intent fields are looked for."""
    if not isinstance(data, dict):
        return ImportProblem(line, f"expected a JSON object, got {type(data).__name__}")
    if text_column:
        text_keys = (text_column,)
    text_key = next((k for k in text_keys if k in data), None)
    if text_key is None:
        accepted = f"{text_column!r} (the text_column)" if text_column else \
            " or ".join(map(repr, text_keys)) + " (or name yours with text_column)"
        return ImportProblem(line, f"no question text: {_fields_found(data)}; accepted: {accepted}")
    text = data[text_key]
    if not isinstance(text, str) or not text.strip():
        return ImportProblem(line, f"field {text_key!r} must be a non-empty string")
    text = text.strip()
    if len(text) > QUESTION_TEXT_MAX_CHARS:
        return ImportProblem(line, f"the question is {len(text):,} characters long, over the limit of "
                                   f"{QUESTION_TEXT_MAX_CHARS:,}")
    if intent_column:
        value = data.get(intent_column)
        if not isinstance(value, str) or not value.strip():
            return ImportProblem(line, f"no intent: field {intent_column!r} (the intent_column) is missing or empty; "
                                       f"{_fields_found(data)}")
        names, path = intent_names_from_fields(_mapped_intent_fields(value), topic_name)
    else:
        names, path = intent_names_from_fields(data, topic_name)
    if not names:
        return ImportProblem(line, f"no intent: {_fields_found(data)}; accepted: {', '.join(intent_fields)} "
                                   "(or name yours with intent_column)")
    status = data.get("status")
    if status is not None and not isinstance(status, str):
        return ImportProblem(line, "field 'status' must be a string")
    split = data.get("split")
    if split is not None and not isinstance(split, str):
        return ImportProblem(line, f"field 'split' must be a string: {ACCEPTED_SPLIT_NAMES}")
    if split and split.strip():
        normal = split_name_normalize(split)
        if normal is None:
            return ImportProblem(line, f"unknown split {split.strip()!r}: use {ACCEPTED_SPLIT_NAMES}")
        split = normal
    augmented = data.get("source") == AUGMENTED_SOURCE
    transformation = data.get("transformation") if augmented else ""
    if transformation is None:
        transformation = ""
    if not isinstance(transformation, str):
        return ImportProblem(line, "field 'transformation' must be a string")
    transformation = transformation.strip()
    if len(transformation) > TRANSFORMATION_MAX_CHARS:
        return ImportProblem(line, f"field 'transformation' is {len(transformation):,} characters long, over the "
                                   f"limit of {TRANSFORMATION_MAX_CHARS}")
    # The intent's names are stored too when missing intents are created from the path.
    for field_name, value in [(text_key, text), *(("intent", name) for name in names + path),
                              ("status", status or ""), ("transformation", transformation)]:
        if problem := _unstorable(line, field_name, value):
            return problem
    return ImportRecord(line=line, text=text, intent_names=names, intent_path=path, status=status or None,
                        split=split or None, augmented=augmented, transformation=transformation)


class FormatReader:
    name = ""
    extension = ""

    def __init__(self, *, topic_name: str, text_column: str = "", intent_column: str = ""):
        """`text_column` and `intent_column` name the file's own columns for the question and its
        intent (a `text,category` CSV: intent_column="category")."""
        self.topic_name = topic_name
        self.text_column = text_column.strip()
        self.intent_column = intent_column.strip()

    def _record(self, line: int, data, text_keys=("question", "text"), intent_fields=INTENT_FIELDS):
        return _record(line, data, self.topic_name, text_keys, text_column=self.text_column,
                       intent_column=self.intent_column, intent_fields=intent_fields)

    def read(self, stream) -> Iterator[ImportRecord | ImportProblem]:
        raise NotImplementedError


class JsonlReader(FormatReader):
    """One JSON object a line: `question` (or `text`) and the intent as the seed schema gives it."""

    name = "jsonl"
    extension = "jsonl"

    def read(self, stream):
        for item in self.read_objects(stream):
            yield item if isinstance(item, ImportProblem) else self._record(*item)

    @staticmethod
    def read_objects(stream) -> Iterator[tuple[int, object] | ImportProblem]:
        """(line, parsed JSON) pairs, or problems, without mapping them to records."""
        for number, line in _physical_lines(stream):
            if isinstance(line, ImportProblem):
                yield line
                continue
            if not line.strip():
                continue
            try:
                yield number, json.loads(line.rstrip("\r\n"))
            except ValueError as exc:
                yield ImportProblem(number, f"invalid JSON ({getattr(exc, 'msg', exc)} at column "
                                            f"{getattr(exc, 'colno', '?')})")


# A CSV cell holds a string: intent_hierarchy (a JSON list) is not read from CSV.
CSV_INTENT_COLUMNS = ("intent_path", "intent_full_name", "intent_number", "intent", "label")


class CsvReader(FormatReader):
    """A header row, then `text` (or `question`) and one intent column: intent_path, intent_number,
    intent or label (a name; numeric labels are export-specific class ids and are not accepted)."""

    name = "csv"
    extension = "csv"

    def read(self, stream):
        problems: list[ImportProblem] = []

        def text_lines():
            for _, line in _physical_lines(stream):
                if isinstance(line, ImportProblem):
                    problems.append(line)
                    yield "\n"  # keep the reader's line count right
                else:
                    yield line

        reader = csv.reader(text_lines())
        header = None
        while True:
            try:
                cells = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:
                yield ImportProblem(reader.line_num, f"broken CSV ({exc})")
                continue
            yield from problems
            problems.clear()
            if not cells or not any(c.strip() for c in cells):
                continue
            if header is None:
                header = [c.strip().lower() for c in cells]
                if problem := self._header_problem(reader.line_num, header):
                    yield problem
                    return
                continue
            if len(cells) != len(header):
                yield ImportProblem(reader.line_num, f"expected {len(header)} columns as in the header, got {len(cells)}")
                continue
            # Cells this project's CSV export neutralised against spreadsheet formulas get their text back.
            data = dict(zip(header, map(csv_cell_restore, cells), strict=True))
            if not self.intent_column and data.get("label", "").strip().isdigit():
                data.pop("label")
            yield self._record(reader.line_num, {k: v for k, v in data.items() if v.strip()},
                               text_keys=("text", "question"), intent_fields=CSV_INTENT_COLUMNS)
        yield from problems

    def _header_problem(self, line: int, header: list[str]) -> ImportProblem | None:
        """A header without a text or an intent column, naming the columns found and those accepted."""
        found = ", ".join(repr(h) for h in header[:30])
        self.text_column, self.intent_column = self.text_column.lower(), self.intent_column.lower()
        text = [self.text_column] if self.text_column else ["text", "question"]
        if not set(text) & set(header):
            accepted = f"{self.text_column!r} (the text_column)" if self.text_column else \
                "'text' or 'question' (or name yours with text_column)"
            return ImportProblem(line, f"the header has no question text column: found {found}; accepted: {accepted}")
        intent = [self.intent_column] if self.intent_column else CSV_INTENT_COLUMNS
        if not set(intent) & set(header):
            accepted = f"{self.intent_column!r} (the intent_column)" if self.intent_column else \
                ", ".join(CSV_INTENT_COLUMNS) + " (or name yours with intent_column)"
            return ImportProblem(line, f"the header has no intent column: found {found}; accepted: {accepted}")
        return None


class AlpacaReader(FormatReader):
    """Alpaca records: `input` is the question, `output` the intent (as exported: "2.1 Name", or a
    path or a name). A JSON array (alpaca_data.json) or one object a line."""

    name = "alpaca"
    extension = "json"

    def read(self, stream):
        head = stream.read(4096)
        stream.seek(0)
        if head.lstrip(BOM + b" \t\r\n").startswith(b"["):
            yield from self._read_array(stream)
        else:
            yield from (self._convert(item) for item in JsonlReader.read_objects(stream))

    def _convert(self, item):
        if isinstance(item, ImportProblem):
            return item
        number, data = item
        if not isinstance(data, dict):
            return ImportProblem(number, f"expected a JSON object, got {type(data).__name__}")
        text_key, intent_key = self.text_column or "input", self.intent_column or "output"
        for key, what, option in ((text_key, "the question", "text_column"), (intent_key, "the intent", "intent_column")):
            if key not in data:
                return ImportProblem(number, f"missing field {key!r} ({what}): {_fields_found(data)}; "
                                             f"accepted: {key!r} (or name yours with {option})")
        output = data[intent_key]
        if not isinstance(output, str):
            return ImportProblem(number, f"field {intent_key!r} (the intent) must be a string")
        fields = {"input": data[text_key], **_mapped_intent_fields(output), "split": data.get("split")}
        for key in ("status", "source", "transformation"):
            if key in data:
                fields[key] = data[key]
        return _record(number, fields, self.topic_name, text_keys=("input",))

    def _read_array(self, stream):
        raw = stream.read(MAX_ARRAY_BYTES + 1)
        if len(raw) > MAX_ARRAY_BYTES:
            yield ImportProblem(None, f"an Alpaca JSON array over {MAX_ARRAY_BYTES // 2**20} MiB: "
                                      "convert it to JSONL (one object a line)")
            return
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            line = raw.count(b"\n", 0, exc.start) + 1
            yield ImportProblem(line, f"not UTF-8 (byte 0x{raw[exc.start]:02x}); save the file as UTF-8")
            return
        decoder = json.JSONDecoder()
        position, line = text.index("[") + 1, 1 + text.count("\n", 0, text.index("["))
        try:
            while True:
                while position < len(text) and text[position] in " \t\r\n,":
                    line += text[position] == "\n"
                    position += 1
                if position >= len(text):
                    yield ImportProblem(line, "invalid JSON (the array is not closed with ']')")
                    return
                if text[position] == "]":
                    return
                data, end = decoder.raw_decode(text, position)
                yield self._convert((line, data))
                line += text.count("\n", position, end)
                position = end
        except ValueError as exc:
            yield ImportProblem(getattr(exc, "lineno", line), f"invalid JSON ({getattr(exc, 'msg', exc)})")


READERS: dict[str, type[FormatReader]] = {reader.name: reader for reader in (JsonlReader, CsvReader, AlpacaReader)}
