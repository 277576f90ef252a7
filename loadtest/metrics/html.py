"""HTML building blocks shared by the run report, the comparison report and the live Voice
view (core: pure functions that return escaped markup).

Every value is escaped here (:func:`esc`); :func:`table` takes cells that are HTML already.
Numbers read defensively (:func:`~loadtest.metrics.report_plots.as_number`): anything that is
not a finite number shows as "–".
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from html import escape

from loadtest.metrics.report_plots import as_number

__all__ = [
    "CSS",
    "STATUSES",
    "VERDICTS",
    "badge",
    "duration",
    "esc",
    "fmt_int",
    "fmt_ms",
    "fmt_pct",
    "note",
    "plain",
    "table",
    "when",
    "with_unit",
]

VERDICTS = ("pass", "warn", "fail", "invalid")
STATUSES = ("pass", "warn", "fail", "no_data")

CSS = """
*{box-sizing:border-box}
body{margin:0;background:#f3f4f6;color:#111827;font:14px/1.45 system-ui,-apple-system,
"Segoe UI",Roboto,"DejaVu Sans",sans-serif}
main{max-width:1360px;margin:0 auto;padding:20px 24px 40px}
header{display:flex;flex-wrap:wrap;align-items:center;gap:16px 28px;background:#fff;
border-radius:10px;padding:18px 22px;box-shadow:0 1px 2px #0000001a}
header h1{font-size:20px;margin:0 0 6px}
header dl{display:grid;grid-template-columns:auto 1fr;gap:2px 12px;margin:0}
header dt{color:#6b7280}
header dd{margin:0;overflow-wrap:anywhere}
.badge{display:inline-block;padding:6px 16px;border-radius:999px;color:#fff;font-weight:700;
letter-spacing:.06em;font-size:18px}
.badge small{font-weight:400;letter-spacing:0;font-size:12px;opacity:.9}
.side{margin-left:auto;display:flex;flex-direction:column;align-items:flex-end;gap:12px}
.kpis{display:flex;flex-wrap:wrap;gap:10px}
.kpi{background:#f9fafb;border:1px solid #e5e7eb;border-radius:8px;padding:8px 14px;min-width:120px}
.kpi b{display:block;font-size:18px}
.kpi span{color:#6b7280;font-size:12px}
section{background:#fff;border-radius:10px;padding:14px 22px 18px;margin-top:18px;
box-shadow:0 1px 2px #0000001a}
h2{font-size:16px;margin:4px 0 12px}
h3{font-size:13px;margin:6px 0 4px;color:#374151}
.tables{display:flex;flex-wrap:wrap;gap:14px 32px;align-items:flex-start}
#latency-table td.text{white-space:nowrap}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(520px,1fr));gap:14px 24px}
figure{margin:0}
svg.plot{width:100%;max-width:760px;height:auto;display:block;font-family:inherit}
svg .tick{font-size:11px;fill:#4b5563}
svg .axis{font-size:12px;fill:#374151}
svg .legend{font-size:12px;fill:#111827}
table{border-collapse:collapse;font-variant-numeric:tabular-nums}
th,td{padding:4px 12px;border-bottom:1px solid #e5e7eb;text-align:right}
th:first-child,td:first-child{text-align:left}
th{background:#f9fafb;font-weight:600}
th.text,td.text{text-align:left;overflow-wrap:break-word}
#settings-table td.text:last-child{overflow-wrap:anywhere}
.status{font-weight:700;padding:1px 8px;border-radius:4px;color:#fff}
.pass{background:#16a34a}.warn{background:#d97706}.fail{background:#dc2626}
.invalid{background:#6b7280}.no_data{background:#9ca3af}
.reasons{border-left:4px solid #6b7280;background:#f3f4f6;padding:8px 14px;margin:0 0 12px}
.reasons li{margin:2px 0}
.note{color:#6b7280;font-style:italic;margin:6px 0}
footer{color:#9ca3af;font-size:12px;margin-top:18px;text-align:center}
"""


def esc(value: object) -> str:
    return escape(str(value), quote=True)


def note(text: str) -> str:
    return f'<p class="note">{esc(text)}</p>'


def fmt_ms(value: object) -> str:
    number = as_number(value)
    if number is None:
        return "–"
    return f"{number:,.0f}" if abs(number) >= 100 else f"{number:.1f}"


def fmt_pct(value: object) -> str:
    number = as_number(value)
    return "–" if number is None else f"{number * 100:.1f} %"


def fmt_int(value: object) -> str:
    number = as_number(value)
    return "–" if number is None else f"{number:,.0f}"


def plain(value: object) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    number = as_number(value)
    if number is None:
        return "–" if value is None else str(value)
    return f"{number:.10g}"


def with_unit(shown: str, unit: str) -> str:
    return shown if shown == "–" else shown + unit


def when(value: object) -> str:
    if not isinstance(value, str):
        return "–"
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return value
    zone = "" if moment.tzinfo is None else f" {moment.tzname()}"
    return moment.strftime("%Y-%m-%d %H:%M:%S") + zone


def duration(value: object) -> str:
    seconds = as_number(value)
    if seconds is None:
        return "–"
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min {secs:02d} s"
    return f"{minutes} min {secs:02d} s" if minutes else f"{seconds:.1f} s"


def table(
    head: Sequence[str], rows: Iterable[Sequence[str]], *, table_id: str, text_cols: int = 1
) -> str:
    """Cells in ``rows`` are HTML already (escaped by the caller); headers are escaped here."""
    out = [f'<table id="{esc(table_id)}"><thead><tr>']
    out += [
        f'<th class="text">{esc(h)}</th>' if i < text_cols else f"<th>{esc(h)}</th>"
        for i, h in enumerate(head)
    ]
    out.append("</tr></thead><tbody>")
    for row in rows:
        cells = (
            f'<td class="text">{c}</td>' if i < text_cols else f"<td>{c}</td>"
            for i, c in enumerate(row)
        )
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def badge(verdict: str, exit_code: object) -> str:
    css = verdict if verdict in VERDICTS else "invalid"
    code = "" if as_number(exit_code) is None else f" <small>exit {fmt_int(exit_code)}</small>"
    return f'<span id="verdict" class="badge {css}">{esc(verdict.upper() or "?")}{code}</span>'
