"""CSV exports neutralise spreadsheet formulas: captured queries come from the public."""

import csv
import io

from datasets.exports import export_stream
from datasets.formats.table import csv_cell_neutralise, csv_cell_restore
from datasets.models import Question

HOSTILE = ['=HYPERLINK("http://evil.example","refund")', "+1 555 0100 call me", "-2 items missing",
           "@SUM(A1:A9) what is my balance", "\tcmd|' /C calc'!A0"]


def test_cells_that_start_like_a_formula_get_an_apostrophe(topic, make_intent, make_question):
    intent = make_intent(topic, "Refunds")
    for text in HOSTILE + ["plain question"]:
        make_question(intent, text, status="approved")
    rows = list(csv.reader(io.StringIO("".join(export_stream(questions=Question.objects.all(), format="csv")))))
    assert [row[0] for row in rows[1:]] == ["'" + text for text in HOSTILE] + ["plain question"]
    assert all(not cell.startswith(("=", "+", "-", "@", "\t")) for row in rows for cell in row)


def test_restoring_a_neutralised_cell_gives_the_text_back():
    for text in HOSTILE + ["plain", "'quoted on purpose", "", "-"]:
        assert csv_cell_restore(csv_cell_neutralise(text)) == text


def test_an_exported_csv_with_formula_cells_imports_back_unchanged(topic, make_intent, make_question):
    from datasets.imports import questions_import

    intent = make_intent(topic, "Refunds")
    for text in HOSTILE:
        make_question(intent, text, status="approved")
    exported = "".join(export_stream(questions=Question.objects.filter(topic=topic), format="csv"))
    Question.objects.filter(topic=topic).delete()
    questions_import(topic=topic, stream=io.BytesIO(exported.encode()), format="csv")
    assert sorted(Question.objects.filter(topic=topic).values_list("text", flat=True)) == sorted(
        text.strip() for text in HOSTILE)
