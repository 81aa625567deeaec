"""`{% probed_date_hierarchy cl %}`: the admin's date drill-down, with its periods found by probing
the date index (datasets.admin_lists.date_periods) instead of a DISTINCT over every row."""

import datetime

from django import template
from django.contrib.admin.templatetags.admin_list import date_hierarchy
from django.contrib.admin.templatetags.base import InclusionAdminNode

from datasets.admin_lists import date_periods

register = template.Library()


class ProbedQuerySet:
    """What the stock date_hierarchy asks of `cl.queryset` (the first and last date, the periods),
    answered by index probes."""

    def __init__(self, queryset, field_name: str):
        self.queryset, self.field_name = queryset, field_name
        self._edges = {}

    def _edge(self, descending: bool):
        if descending not in self._edges:
            order = f"-{self.field_name}" if descending else self.field_name
            self._edges[descending] = self.queryset.order_by(order).values_list(self.field_name, flat=True).first()
        return self._edges[descending]

    def aggregate(self, **_):
        return {"first": self._edge(False), "last": self._edge(True)}

    def datetimes(self, field_name, kind):
        first, last = self._edge(False), self._edge(True)
        if first is None:
            return []
        return date_periods(self.queryset, field_name, kind, start=first,
                            end=last + datetime.timedelta(microseconds=1))

    dates = datetimes


class ProbedChangeList:
    def __init__(self, changelist):
        self._changelist = changelist
        self.queryset = ProbedQuerySet(changelist.queryset, changelist.date_hierarchy)

    def __getattr__(self, name):
        return getattr(self._changelist, name)


@register.tag(name="probed_date_hierarchy")
def probed_date_hierarchy_tag(parser, token):
    return InclusionAdminNode(parser, token, func=lambda cl: date_hierarchy(ProbedChangeList(cl)),
                              template_name="date_hierarchy.html", takes_context=False)
