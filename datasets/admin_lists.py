"""Admin lists that cost the same at ten thousand and at a million questions.

Django's admin counts every list in full (the paginator), lists a CharField filter's values with
a SELECT DISTINCT over the whole table, and draws the date drill-down from a DISTINCT over every
row's date: each of those is a full scan at a million rows. Here:

- `EstimatedCountPaginator` counts exactly up to EXACT_COUNT_LIMIT rows and, past that, takes the
  planner's estimate (EXPLAIN), shown as "about N"; it lists at most LISTED_PAGES_MAX pages, so
  no page is a deep OFFSET (`CappedChangeList` serves a page past the cap as the last listed one);
- `TopicValuesFilter` lists a column's values by a skip scan over a (topic, column) index, per
  visible topic: a few index probes per value instead of a scan;
- `date_periods` finds the years, months or days of the date drill-down by probing the date
  index once per period.
"""

import datetime
import json
from math import ceil

from django.contrib import admin
from django.contrib.admin import helpers
from django.contrib.admin.views.main import ChangeList
from django.core.paginator import Paginator
from django.db import connections
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.html import format_html
from django.utils.translation import gettext as _

# Exact counts below this; the planner's estimate above it (counting further costs a scan).
EXACT_COUNT_LIMIT = 10_000
# Pages past this are not listed: an OFFSET of hundreds of thousands of rows costs a scan of them.
LISTED_PAGES_MAX = 100


def planner_row_estimate(queryset) -> int | None:
    """PostgreSQL's estimate of the rows `queryset` returns (EXPLAIN, nothing run); None elsewhere."""
    connection = connections[queryset.db]
    if connection.vendor != "postgresql":
        return None
    sql, params = queryset.order_by().values("pk").query.get_compiler(using=queryset.db).as_sql()
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
        plan = cursor.fetchone()[0]
    plan = json.loads(plan) if isinstance(plan, str) else plan
    return int(plan[0]["Plan"]["Plan Rows"])


class EstimatedCountPaginator(Paginator):
    """Counts up to EXACT_COUNT_LIMIT rows exactly (one bounded query); past it, the planner's
    estimate (`count_is_estimate`), never less than what was counted. At most LISTED_PAGES_MAX pages."""

    count_is_estimate = False

    @cached_property
    def count(self):
        counted = self.object_list.order_by()[: EXACT_COUNT_LIMIT + 1].count()
        if counted <= EXACT_COUNT_LIMIT:
            return counted
        estimate = planner_row_estimate(self.object_list)
        if estimate is None:  # no planner to ask (SQLite): count it all
            return self.object_list.count()
        self.count_is_estimate = True
        return max(estimate, counted)

    @cached_property
    def num_pages(self):
        return min(super().num_pages, LISTED_PAGES_MAX)

    @property
    def pages_capped(self) -> bool:
        return ceil(self.count / self.per_page) > LISTED_PAGES_MAX if self.count else False


class CappedChangeList(ChangeList):
    """A page number past the listed pages shows the last listed page (not an error page), and
    the model admin may attach per-page figures to the page's rows (`rows_attach`)."""

    def get_results(self, request):
        self.page_num = max(1, min(self.page_num, LISTED_PAGES_MAX))
        super().get_results(request)
        rows_attach = getattr(self.model_admin, "rows_attach", None)
        if rows_attach is not None:
            self.result_list = list(self.result_list)
            rows_attach(self.result_list)


class LargeListAdminMixin:
    """For lists that grow to millions of rows: estimated counts, capped pages, no facet counts
    (each facet is a COUNT over the whole filtered list)."""

    paginator = EstimatedCountPaginator
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER

    def get_changelist(self, request, **kwargs):
        return CappedChangeList

    def action_checkbox(self, obj):
        # The stock one renders a CheckboxInput through the form renderer's template for every
        # row: a third of a 100-row page's time. The same HTML, formatted directly.
        return format_html('<input type="checkbox" name="{}" value="{}" class="action-select" aria-label="{}">',
                           helpers.ACTION_CHECKBOX_NAME, str(obj.pk),
                           format_html(_("Select this object for an action - {}"), str(obj)))


def topic_column_values(*, model, column: str, topic_ids: list[int]) -> list:
    """The distinct non-null values of `column` among `model` rows of these topics, sorted: a
    recursive skip scan over the (topic, column) index, one probe per topic and value."""
    table = model._meta.db_table
    connection = connections["default"]
    if not topic_ids:
        return []
    if connection.vendor != "postgresql":
        rows = model.objects.filter(topic_id__in=topic_ids).exclude(**{f"{column}__isnull": True})
        return sorted(set(rows.values_list(column, flat=True)))
    quoted = connection.ops.quote_name(column)
    sql = f"""
        WITH RECURSIVE found(topic_id, value) AS (
            SELECT t.id, (SELECT min({quoted}) FROM {table} q WHERE q.topic_id = t.id)
            FROM unnest(%s::bigint[]) AS t(id)
            UNION ALL
            SELECT found.topic_id, (SELECT min({quoted}) FROM {table} q
                                    WHERE q.topic_id = found.topic_id AND q.{quoted} > found.value)
            FROM found WHERE found.value IS NOT NULL
        )
        SELECT DISTINCT value FROM found WHERE value IS NOT NULL ORDER BY value"""
    with connection.cursor() as cursor:
        cursor.execute(sql, [list(topic_ids)])
        return [row[0] for row in cursor.fetchall()]


class TopicValuesFilter(admin.AllValuesFieldListFilter):
    """The stock "all values" filter of a column, with its values found by `topic_column_values`
    among the topics the model admin shows the user (`visible_topic_ids`), as the stock one finds
    them in the admin's queryset."""

    def __init__(self, field, request, params, model, model_admin, field_path):
        super().__init__(field, request, params, model, model_admin, field_path)  # lazy: runs nothing
        self.lookup_choices = topic_column_values(model=model, column=field.column,
                                                  topic_ids=model_admin.visible_topic_ids(request))


def date_periods(queryset, field_name: str, kind: str, *, start: datetime.datetime,
                 end: datetime.datetime) -> list[datetime.datetime]:
    """The starts (local time) of the years, months or days between `start` and `end` holding at
    least one row of `queryset`: one probe of the `field_name` index per period found (the first
    row at or after a period's start), instead of a DISTINCT over every row."""
    periods = []
    lower = start
    while lower < end:
        first = (queryset.filter(**{f"{field_name}__gte": lower, f"{field_name}__lt": end})
                 .order_by(field_name).values_list(field_name, flat=True).first())
        if first is None:
            break
        local = timezone.localtime(first) if timezone.is_aware(first) else first
        if kind == "year":
            period = local.replace(month=1, day=1, hour=0, minute=0, second=0, microsecond=0)
            following = period.replace(year=period.year + 1)
        elif kind == "month":
            period = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
            following = (period.replace(year=period.year + 1, month=1) if period.month == 12
                         else period.replace(month=period.month + 1))
        else:
            period = local.replace(hour=0, minute=0, second=0, microsecond=0)
            following = period + datetime.timedelta(days=1)
        if timezone.is_aware(period):  # midnight in the local zone, across a DST change too
            period = timezone.make_aware(period.replace(tzinfo=None))
            following = timezone.make_aware(following.replace(tzinfo=None))
        periods.append(period)
        lower = following
    return periods
