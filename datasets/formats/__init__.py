"""Training-file formats: one writer class per export format, one reader class per import format."""

from datasets.formats.base import EXPORT_COLUMNS, ExportContext, ExportRow, FormatWriter
from datasets.formats.huggingface import HuggingFaceWriter
from datasets.formats.instruct import AlpacaWriter, ShareGptWriter
from datasets.formats.rasa import RasaWriter
from datasets.formats.seed import SeedJsonlWriter, SeedJsonWriter
from datasets.formats.table import CsvWriter

WRITERS: dict[str, type[FormatWriter]] = {
    writer.name: writer
    for writer in (SeedJsonlWriter, SeedJsonWriter, CsvWriter, AlpacaWriter, ShareGptWriter, RasaWriter,
                   HuggingFaceWriter)
}

__all__ = ["EXPORT_COLUMNS", "WRITERS", "ExportContext", "ExportRow", "FormatWriter"]
