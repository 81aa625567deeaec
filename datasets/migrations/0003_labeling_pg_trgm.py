"""pg_trgm, for the review screen's possible duplicates (trigram similarity).

TrigramExtension does nothing on other databases, so the SQLite demo migrates cleanly and falls
back to word overlap (labeling.selectors.questions_similar). No trigram index: the lookup is
limited to the question's intent, which the intent index serves; a GIN index over the whole
table cost every review write dozens of index entries and did not make the lookup fast at a
million rows (see docs/benchmarks.md, "Review queue").
"""

from django.contrib.postgres.operations import TrigramExtension
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("datasets", "0003_exports_file_storage")]
    operations = [TrigramExtension()]
