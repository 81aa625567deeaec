"""What every format writer shares: the row it is given, the export's context, the writer protocol.

A writer turns rows into text and keeps no file handle: the export job writes what it returns to
a file, the streaming API yields it to the client, the admin joins it into a download. Rows
arrive grouped by intent, in tree order, so writers that group by intent (Rasa) need no buffer.
"""

import json
from dataclasses import dataclass, field
from typing import NamedTuple

from datasets.selectors import IntentInfo

# One JSON string literal, non-ASCII kept readable: what json.dumps(ensure_ascii=False) does for a
# str, through the C encoder, without building a dict per row (the hot path of every format).
json_string = json.encoder.encode_basestring


class ExportRow(NamedTuple):
    """One question as the export query yields it (a values_list tuple, not a model instance)."""

    id: int
    text: str
    intent_id: int
    status: str
    source: str
    created_at: str  # as the database prints it: "2026-01-02 03:04:05.678+00" (UTC)
    near_key: int | None  # what the split keeps together (datasets.normalize.near_duplicate_key)
    split: str  # the question's own split (Question.split), "" when it has none
    contrastive_of_id: int | None = None  # a hard negative's neighbouring intent (Question.contrastive_of)
    transformation: str = ""  # an augmented question's (Question.transformation), "" for the others


def provenance_fields(row: ExportRow) -> str:
    """`, "source": ..., "transformation": ...` for a JSON record: on every row (a column present in
    some records only is dropped by readers that take the columns from the first record), so a
    user can filter augmented rows (source `augmented`) out of a test set."""
    return f', "source": {json_string(row.source)}, "transformation": {json_string(row.transformation)}'


def iso_timestamp(created_at: str) -> str:
    """"2026-01-02 03:04:05.678+00" (PostgreSQL) or "2026-01-02 03:04:05.678" (SQLite), both UTC,
    as "2026-01-02T03:04:05+00:00"."""
    return f"{created_at[:10]}T{created_at[11:19]}+00:00"


# The columns of ExportRow, in order; created_at is read as text, from this annotation.
EXPORT_COLUMNS = tuple("created_text" if name == "created_at" else name for name in ExportRow._fields)


@dataclass
class ExportContext:
    """What a writer needs besides the row: the topic's intents, the label list and the prompts."""

    topic_name: str
    intents: dict[int, IntentInfo]
    # Intent id -> class id: the exported intents in tree order, numbered from 0.
    labels: dict[int, int]
    system_prompt: str = ""
    instruction: str = ""
    settings: dict = field(default_factory=dict)

    @property
    def label_names(self) -> list[str]:
        return [self.intents[intent_id].intent_full_name for intent_id in self.labels]


class FormatWriter:
    """One training-file format. Subclasses set the class attributes and implement `row`."""

    name = ""
    extension = ""
    content_type = "text/plain"
    title = ""
    # False for formats that are a folder of files (Hugging Face): no single-file download.
    single_file = True
    # True for formats whose methods return bytes (Parquet): written by export jobs only, never
    # streamed as text (see `streamable`).
    binary = False

    def __init__(self, context: ExportContext):
        self.context = context

    @classmethod
    def select(cls, questions):
        """The questions this format writes, of those the export takes (all of them; triplets: hard negatives)."""
        return questions

    def begin(self) -> str:
        return ""

    def row(self, row: ExportRow, intent: IntentInfo, index: int) -> str:
        """The text for one question; `index` counts the intent's questions in this file from 1."""
        raise NotImplementedError

    def end(self) -> str:
        return ""

    @classmethod
    def streamable(cls) -> bool:
        """Whether the format can be sent as one text file while it is read (the streaming API and
        the admin's Export button)."""
        return cls.single_file and not cls.binary

    @classmethod
    def folder_files(cls, context: ExportContext, counts: dict, intent_counts: dict,
                     num_bytes: dict | None = None) -> dict[str, str]:
        """Extra files written beside the split files (name -> text); most formats have none.
        `num_bytes` is each part's size as one Arrow table, from writers that count it."""
        return {}


def labels_json(context: ExportContext) -> str:
    """labels.json: the class ids' intent names, in label order (label 0 first)."""
    return json.dumps(context.label_names, ensure_ascii=False, indent=2) + "\n"
