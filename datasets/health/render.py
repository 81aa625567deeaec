"""The report as plain text lines (the CLI) and inline SVG bar charts (the page; no CDN)."""

from html import escape

from django.utils.safestring import mark_safe


def _refs(refs: list, kind: str) -> str:
    word = "questions" if kind == "topic" else "lines"
    shown = ", ".join(f"#{r}" if kind == "topic" else str(r) for r in refs[:8])
    return f"{word} {shown}{' ...' if len(refs) > 8 else ''}"


def report_lines(report: dict) -> list[str]:
    """The report as text, verdicts first, offending intents and rows named."""
    subject, kind = report["subject"], report["subject"]["kind"]
    lines = [f"Health of {subject['kind']} {subject['name']}: {subject['questions']:,} questions, "
             f"{subject['intents']:,} intents", ""]
    lines.append("Verdicts (fix first):" if report["verdicts"] else "Verdicts: nothing to fix.")
    lines += [f"  [{v['severity']}] {v['message']}" for v in report["verdicts"]]
    bal = report["balance"]
    lines += ["", f"Balance: min {bal['min']}, median {bal['median']}, max {bal['max']}, Gini {bal['gini']}"]
    lines += [f"  fewer than 10: {r['intent']} ({r['count']})" for r in bal["under_10"]]
    if bal["target"]:
        lines.append(f"  under the target of {bal['target']}: {len(bal['under_target'])} intents")
    dup = report["duplicates"]
    lines += ["", f"Label conflicts (same text, two intents): {dup['label_conflicts']['count']}"]
    lines += [f"  {c['text']!r}: {' | '.join(c['intents'])} ({_refs(c['refs'], kind)})"
              for c in dup["label_conflicts"]["listed"]]
    lines.append(f"Exact duplicates within intents: {dup['exact']['count']}")
    lines += [f"  {g['text']!r} ({_refs(g['refs'], kind)})" for g in dup["exact"]["listed"]]
    for where in ("across_intents", "within_intent"):
        near = dup["near"][where]
        lines.append(f"Near-duplicate groups {where.replace('_', ' ')}: {near['count']}")
        lines += [f"  {' / '.join(map(repr, g['texts'][:3]))}: {' | '.join(g['intents'])} ({_refs(g['refs'], kind)})"
                  for g in near["listed"][:10]]
    for where in ("across_intents", "within_intent"):
        para = dup["paraphrases"][where]
        lines.append(f"Paraphrase pairs {where.replace('_', ' ')} (Jaccard >= {dup['paraphrases']['threshold']}): "
                     f"{para['count']}")
        lines += [f"  {p['score']}: {p['a']['text']!r} [{p['a']['intent']}, {p['a']['ref']}] ~ "
                  f"{p['b']['text']!r} [{p['b']['intent']}, {p['b']['ref']}]" for p in para["listed"][:10]]
    div = report["diversity"]
    lines += ["", "Diversity: intents whose questions are most alike (mean pairwise similarity):"]
    lines += [f"  {r['intent']}: {r['mean_similarity']}" for r in div["most_alike"][:5]]
    cov = report["coverage"]
    lines += ["", f"Languages requested: {', '.join(cov['languages']['requested'])}; found: "
                  + ", ".join(f"{k} {v}" for k, v in cov["languages"]["found"].items())]
    for lang, found in cov["languages"]["not_requested"].items():
        lines.append(f"  {lang} (not requested): {found['count']}: " + "; ".join(
            f"{r['text']!r} [{r['ref']}]" for r in found["listed"][:5]))
    lines.append("Sources: " + ", ".join(f"{k} {v}" for k, v in cov["sources"].items()))
    lines.append("Review status: " + ", ".join(f"{k} {v}" for k, v in cov["statuses"].items()))
    for row in cov["mix"]:
        lines.append(f"  run {row['run']} {row['dimension']}: " + ", ".join(
            f"{v['value']} {v['found']:.0%} (asked {v['requested']:.0%})" for v in row["values"]))
    leak = report["leakage"]
    lines.append("")
    if leak["checked"]:
        lines.append(f"Leakage across {leak['split']}: {leak['near']['count']} near-duplicate groups, "
                     f"{leak['paraphrases']['count']} paraphrase pairs on both sides")
        lines += [f"  {p['a']['text']!r} ({p['a']['split']}) ~ {p['b']['text']!r} ({p['b']['split']})"
                  for p in leak["paraphrases"]["listed"][:10]]
    else:
        lines.append("Leakage: no split to check.")
    return lines


def bar_chart_svg(rows: list[tuple[str, float]], *, width: int = 640, bar: int = 14, mark: float | None = None) -> str:
    """A horizontal bar chart as inline SVG: one labelled bar per row; `mark` draws a line (a target)."""
    top = max([v for _, v in rows] + [mark or 0, 1])
    label_w, height = 220, bar * len(rows) + 4
    scale = (width - label_w - 50) / top
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
             f'class="health-chart">']
    for i, (label, value) in enumerate(rows):
        y = i * bar + 2
        parts.append(f'<text x="{label_w - 4}" y="{y + bar - 4}" text-anchor="end" font-size="11">'
                     f'{escape(label[:34])}</text>')
        parts.append(f'<rect x="{label_w}" y="{y}" width="{max(value * scale, 1):.1f}" height="{bar - 3}" '
                     f'fill="#4a7bd0"><title>{escape(label)}: {value}</title></rect>')
        parts.append(f'<text x="{label_w + value * scale + 4:.1f}" y="{y + bar - 4}" font-size="10">{value}</text>')
    if mark:
        x = label_w + mark * scale
        parts.append(f'<line x1="{x:.1f}" y1="0" x2="{x:.1f}" y2="{height}" stroke="#c33" stroke-dasharray="4 3"/>')
    parts.append("</svg>")
    return mark_safe("".join(parts))  # every label is escaped above
