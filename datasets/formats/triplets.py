"""Triplets for retrievers: (query, positive intent, hard-negative intent), from the hard negatives.

A hard negative (Question.contrastive_of set, see distiller's hard negatives) is a question that
shares wording with a neighbouring intent but belongs to its own: the query, its intent as the
positive, the neighbour as the negative. That is the shape sentence-embedding (MultipleNegatives
ranking) and sparse retrievers (SPLADE) are trained from. Two formats, because an export writes
one file per split (and streams one): `triplets` (JSON Lines) and `triplets_tsv` (tab-separated,
with a header). Only hard negatives are written.
"""

import json

from datasets.formats.base import FormatWriter

TRIPLET_COLUMNS = ["query", "positive", "negative", "positive_path", "negative_path", "id", "source",
                   "transformation"]


class TripletsJsonlWriter(FormatWriter):
    name = "triplets"
    extension = "jsonl"
    content_type = "application/x-ndjson"
    title = "Triplets (query, positive, hard negative), JSON Lines"

    @classmethod
    def select(cls, questions):
        return questions.filter(contrastive_of__isnull=False)

    def _values(self, row, intent) -> list:
        negative = self.context.intents.get(row.contrastive_of_id)
        return [row.text, intent.intent_full_name, negative.intent_full_name if negative else "",
                intent.intent_path, negative.intent_path if negative else "", row.id, row.source,
                row.transformation]

    def row(self, row, intent, index):
        return json.dumps(dict(zip(TRIPLET_COLUMNS, self._values(row, intent), strict=True)),
                          ensure_ascii=False) + "\n"


class TripletsTsvWriter(TripletsJsonlWriter):
    name = "triplets_tsv"
    extension = "tsv"
    content_type = "text/tab-separated-values"
    title = "Triplets (query, positive, hard negative), TSV"

    def begin(self):
        return "\t".join(TRIPLET_COLUMNS) + "\n"

    def row(self, row, intent, index):
        # A tab or line break inside a cell would shift the columns: questions are one line of words.
        return "\t".join(" ".join(str(value).split()) for value in self._values(row, intent)) + "\n"
