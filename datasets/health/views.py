"""The health page of a topic, linked from its dashboard: the report with inline SVG charts."""

from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import render

from datasets.health.render import bar_chart_svg
from datasets.health.services import topic_health_report
from datasets.permissions import topics_for_reviewer


@login_required
def topic_health_page(request, topic_id):
    topic = topics_for_reviewer(request.user).filter(pk=topic_id).first()
    if topic is None:  # another topic's report, or no role: as if it did not exist
        raise Http404("No such topic.")
    report = topic_health_report(topic=topic)
    balance = report["balance"]["per_intent"]
    diversity = report["diversity"]["per_intent"]
    lengths: dict[str, int] = {}
    for row in diversity:
        for label, n in row["length"]["histogram"].items():
            lengths[label] = lengths.get(label, 0) + n
    charts = {
        "balance": bar_chart_svg([(r["intent"], r["count"]) for r in balance], mark=report["balance"]["target"]),
        "alike": bar_chart_svg([(r["intent"], r["mean_similarity"]) for r in report["diversity"]["most_alike"]]),
        "lengths": bar_chart_svg(list(lengths.items())),
        "languages": bar_chart_svg(list(report["coverage"]["languages"]["found"].items())),
    }
    return render(request, "labeling/health.html", {"topic": topic, "report": report, "charts": charts})
