"""django-import-export resources and file formats for the Question admin.

Export: one admin format per writer in datasets.formats (the admin's export streams our writers
over the filtered changelist, see QuestionAdmin.get_export_data). Import: JSONL, CSV and Alpaca,
read by the project's import service (datasets.imports, through datasets.admin_imports), not by a
tablib Dataset: these classes only name the formats on the import form. Imports only ever create
questions: an `id` column is ignored, because changing an existing question belongs to the review
service, which audits it.
"""

from import_export import fields, resources
from import_export.formats.base_formats import TextFormat

from datasets.formats import WRITERS
from datasets.models import Question


class ProjectFormat(TextFormat):
    """A text format of this project, not a tablib one: subclasses say their title, extension
    and which ways they go. Uploads are kept as bytes (is_binary), so the import service can report
    a bad encoding with its line number."""

    title = ""
    extension = ""
    importable = True
    exportable = False

    def get_title(self):
        return self.title

    def get_format(self):
        return self

    @classmethod
    def is_available(cls):
        return True

    def is_binary(self):
        return True

    def get_read_mode(self):
        return "rb"

    def get_extension(self):
        return self.extension

    def can_import(self):
        return self.importable

    def can_export(self):
        return self.exportable


class JSONL(ProjectFormat):
    """One JSON object per line (the seed tool's dataset format)."""

    title = extension = "jsonl"


class CSV(ProjectFormat):
    """A header row with `text` (or `question`) and an intent column."""

    title = extension = "csv"


class Alpaca(ProjectFormat):
    """Alpaca records (`input` = the question, `output` = the intent)."""

    title = "alpaca"
    extension = "json"


class WriterFormat(ProjectFormat):
    """An export format of datasets.formats offered in the admin. The admin hands it the queryset
    (QuestionAdmin.get_export_data), so it never goes through a tablib Dataset."""

    writer_class = None
    importable = False
    exportable = True

    def get_content_type(self):
        return self.writer_class.content_type

    def export_data(self, dataset, **kwargs):
        raise NotImplementedError("Writer formats export querysets: see QuestionAdmin.get_export_data.")


QUESTION_EXPORT_FORMATS = [
    type(f"{writer.__name__}Format", (WriterFormat,),
         {"writer_class": writer, "title": writer.name, "extension": writer.extension})
    for writer in WRITERS.values() if writer.streamable()
]
QUESTION_IMPORT_FORMATS = [JSONL, CSV, Alpaca]


class QuestionResource(resources.ModelResource):
    """The resource import-export's forms name. Rows are never imported through it (see the module
    docstring); its fields are the columns the import form lists."""

    id = fields.Field(attribute="id", column_name="id", readonly=True)

    class Meta:
        model = Question
        fields = ("id", "text", "topic", "intent", "language", "source", "status", "split")
        export_order = fields
