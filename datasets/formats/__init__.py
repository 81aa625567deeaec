"""Training-file formats: one writer class per export format, one reader class per import format."""

from datasets.formats.base import EXPORT_COLUMNS, ExportContext, ExportRow, FormatWriter
from datasets.formats.huggingface import HuggingFaceParquetWriter, HuggingFaceWriter
from datasets.formats.instruct import AlpacaWriter, OpenAiWriter, ShareGptWriter
from datasets.formats.parquet import ParquetWriter
from datasets.formats.rasa import RasaWriter
from datasets.formats.seed import SeedJsonlWriter, SeedJsonWriter
from datasets.formats.table import CsvWriter
from datasets.formats.triplets import TripletsJsonlWriter, TripletsTsvWriter

WRITERS: dict[str, type[FormatWriter]] = {
    writer.name: writer
    for writer in (SeedJsonlWriter, SeedJsonWriter, CsvWriter, ParquetWriter, AlpacaWriter, ShareGptWriter,
                   OpenAiWriter, RasaWriter, HuggingFaceWriter, HuggingFaceParquetWriter, TripletsJsonlWriter,
                   TripletsTsvWriter)
}

__all__ = ["EXPORT_COLUMNS", "WRITERS", "ExportContext", "ExportRow", "FormatWriter"]
