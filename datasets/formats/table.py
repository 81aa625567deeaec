"""CSV: `text,label` first (what most classifier trainers read), then the readable columns."""

import csv
import io

from datasets.formats.base import FormatWriter

# `source` and `transformation` (blank but for augmented rows) let a user filter augmented rows out
# of a test set; they come last so `text,label` stays first.
CSV_COLUMNS = ["text", "label", "intent", "intent_number", "intent_path", "status", "source", "id", "transformation"]
# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection); captured
# queries come from the public. Such a cell is written with a leading apostrophe, which
# spreadsheets hide and this project's CSV import takes off again (csv_cell_restore).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell_neutralise(value):
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def csv_cell_restore(value: str) -> str:
    """The text csv_cell_neutralise wrote a cell for."""
    if value.startswith("'") and value[1:2] and value[1:].startswith(FORMULA_STARTS):
        return value[1:]
    return value


class CsvWriter(FormatWriter):
    name = "csv"
    extension = "csv"
    content_type = "text/csv"
    title = "CSV"

    def __init__(self, context):
        super().__init__(context)
        self._buffer = io.StringIO()
        self._csv = csv.writer(self._buffer, lineterminator="\n")

    def _line(self, values) -> str:
        self._buffer.seek(0)
        self._buffer.truncate()
        self._csv.writerow([csv_cell_neutralise(value) for value in values])
        return self._buffer.getvalue()

    def begin(self):
        return self._line(CSV_COLUMNS)

    def row(self, row, intent, index):
        return self._line([row.text, self.context.labels[intent.id], intent.intent_full_name, intent.number,
                           intent.intent_path, row.status, row.source, row.id, row.transformation])
