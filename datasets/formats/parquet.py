"""Parquet: columns collected row by row and written as one row group every ROW_GROUP_ROWS rows
(pyarrow.parquet.ParquetWriter), so memory holds one row group per file, not the export.

A Parquet writer returns bytes, not text (FormatWriter.binary): what pyarrow wrote since the last
call, usually nothing, a row group every ROW_GROUP_ROWS rows, and the footer at the end. It is
written by export jobs only; the streaming download serves text formats.
"""

import json

import pyarrow as pa
import pyarrow.parquet as pq

from datasets.formats.base import ExportContext, FormatWriter

ROW_GROUP_ROWS = 20_000


class _ByteSink:
    """Where pyarrow writes: bytes wait here until the writer hands them to the export job."""

    closed = False

    def __init__(self):
        self._parts: list[bytes] = []
        self._position = 0

    def write(self, data) -> int:
        data = bytes(data)
        self._parts.append(data)
        self._position += len(data)
        return len(data)

    def tell(self) -> int:
        return self._position

    def flush(self):
        pass

    def close(self):
        self.closed = True

    def take(self) -> bytes:
        data = b"".join(self._parts)
        self._parts.clear()
        return data


def huggingface_features(context: ExportContext, columns: dict[str, pa.DataType]) -> dict:
    """The `datasets` features of these columns, `label` as a ClassLabel with the intent names:
    stored in the Parquet schema's metadata (key "huggingface"), as `datasets` itself does."""
    features = {}
    for name, dtype in columns.items():
        if name == "label":
            features[name] = {"names": context.label_names, "_type": "ClassLabel"}
        else:
            features[name] = {"dtype": "string" if dtype == pa.string() else str(dtype), "_type": "Value"}
    return {"info": {"features": features}}


class ParquetRowGroups:
    """One Parquet file written row group by row group. `add` takes one row's values in column order."""

    def __init__(self, context: ExportContext, columns: dict[str, pa.DataType]):
        metadata = {"huggingface": json.dumps(huggingface_features(context, columns), ensure_ascii=False)}
        self.schema = pa.schema(list(columns.items()), metadata=metadata)
        self._sink = _ByteSink()
        self._writer = pq.ParquetWriter(self._sink, self.schema, compression="snappy")
        self._columns: list[list] = [[] for _ in columns]
        self._rows = 0

    def add(self, values) -> bytes:
        for column, value in zip(self._columns, values, strict=True):
            column.append(value)
        self._rows += 1
        if self._rows < ROW_GROUP_ROWS:
            return b""
        return self._flush()

    def _flush(self) -> bytes:
        if self._rows:
            self._writer.write_batch(pa.record_batch(self._columns, schema=self.schema), row_group_size=self._rows)
            for column in self._columns:
                column.clear()
            self._rows = 0
        return self._sink.take()

    def begin(self) -> bytes:
        return self._sink.take()

    def end(self) -> bytes:
        data = self._flush()
        self._writer.close()
        return data + self._sink.take()


TABLE_COLUMNS = {"text": pa.string(), "label": pa.int64(), "intent": pa.string(), "intent_number": pa.string(),
                 "intent_path": pa.string(), "status": pa.string(), "source": pa.string(), "id": pa.int64(),
                 "transformation": pa.string()}


class ParquetWriter(FormatWriter):
    """The CSV's columns, typed (`label` and `id` as integers), in one Parquet file per part. No
    formula neutralisation: a Parquet cell is never run by a spreadsheet."""

    name = "parquet"
    extension = "parquet"
    content_type = "application/vnd.apache.parquet"
    title = "Parquet"
    binary = True

    def __init__(self, context):
        super().__init__(context)
        self._file = ParquetRowGroups(context, TABLE_COLUMNS)

    def begin(self):
        return self._file.begin()

    def row(self, row, intent, index):
        return self._file.add((row.text, self.context.labels[intent.id], intent.intent_full_name, intent.number,
                               intent.intent_path, row.status, row.source, row.id, row.transformation))

    def end(self):
        return self._file.end()
