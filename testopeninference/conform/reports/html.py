"""The scorecard as one self-contained HTML page (``--html FILE``): inline CSS and JS, nothing fetched.

A matrix of cassettes (rows) by attribute keys (columns: every key some
cassette differs on), each cell coloured by how that cassette fares on that
key (match, missing, unexpected, different, invalid, accepted by the baseline,
or not compared when the cassette had no span to compare). The cassette and
outcome columns stay in view when the matrix scrolls sideways; past
``DENSE_FROM`` keys the columns narrow, so a gateway differing on 70 keys
(LiteLLM) fits a 1600-pixel window. Hovering a cell
shows expected and actual; clicking it pins them in the panel below. Every
text taken from a span or a gateway is escaped: a hostile span cannot add markup.
"""

from __future__ import annotations

import html
from pathlib import Path

from testopeninference.compare import Finding
from testopeninference.conform.outcomes import (COMPARED, OUTCOME_KEY, CassetteResult, Outcome, Scorecard,
                                                 outcome_counts)
from testopeninference.conform.reports.terminal import summary_line
from testopeninference.recorder.atomic import write_atomic

SHOWN_CHARS = 2000  # of a value, in a cell's title and panel
DENSE_FROM = 40  # keys: narrower columns from here on
_ROW_HEAD_CHAR_PX = 7.5  # a 12px monospace character, and a little more, for the sticky cassette column

_STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:16px;color:#222}
h1{font-size:20px;margin:0 0 4px}
.meta{color:#555;margin-bottom:12px}
.chips span{display:inline-block;padding:2px 10px;margin:0 6px 6px 0;border-radius:10px;font-weight:600}
.legend span{display:inline-block;padding:1px 8px;margin-right:6px;border:1px solid #ccc;font-size:12px}
.wrap{overflow:auto;max-height:70vh;max-width:100%;width:fit-content;border:1px solid #ddd}
table.matrix{border-collapse:collapse}
.matrix th,.matrix td{border:1px solid #e3e3e3;padding:0}
.matrix thead th{position:sticky;top:0;background:#fafafa;z-index:2;vertical-align:bottom;height:270px}
.matrix thead th div{writing-mode:vertical-rl;transform:rotate(180deg);white-space:nowrap;padding:6px 4px;
 font:12px ui-monospace,monospace;max-height:260px;overflow:hidden;text-overflow:ellipsis}
.matrix th.row{position:sticky;left:0;background:#fff;z-index:1;text-align:left;padding:2px 8px;
 font:12px ui-monospace,monospace;white-space:nowrap}
.matrix thead th.corner{left:0;z-index:3;text-align:left;vertical-align:bottom;padding:6px 8px}
.matrix td{width:22px;min-width:22px;height:20px;cursor:pointer}
.matrix td.outcome{width:auto;padding:0 8px;font-size:12px;white-space:nowrap}
.matrix th.row,.matrix thead th.corner{width:var(--row);min-width:var(--row);max-width:var(--row);
 box-sizing:border-box;overflow:hidden;text-overflow:ellipsis}
.matrix td.outcome,.matrix thead th.outcome{position:sticky;left:var(--row);z-index:1}
.matrix thead th.outcome{z-index:3}
.matrix.dense thead th div{font-size:11px;line-height:12px;padding:6px 1px}
.matrix.dense td{width:13px;min-width:13px}
td.sel{outline:2px solid #000;outline-offset:-2px}
.match{background:#c8e6c9}.missing{background:#ef9a9a}.unexpected{background:#ffcc80}
.different{background:#fff59d}.invalid{background:#ce93d8}.accepted{background:#b3d4fc}
.notcompared{background:#e0e0e0}.differs{background:#fff59d}.nospan{background:#ef9a9a}
.gatewayerror{background:#ef9a9a}.upstreamdrift{background:#ce93d8}
#panel{margin-top:12px;padding:8px 12px;border:1px solid #ccc;background:#fcfcfc;min-height:40px;
 white-space:pre-wrap;font:12px ui-monospace,monospace}
table.keys{border-collapse:collapse;margin-top:8px}
.keys th,.keys td{border:1px solid #ddd;padding:2px 8px;font-size:12px}.keys td{text-align:right}
.keys td.k{text-align:left;font-family:ui-monospace,monospace}
details{margin:4px 0}summary{cursor:pointer;font-family:ui-monospace,monospace}
details pre{margin:4px 0 8px 16px;white-space:pre-wrap;font-size:12px}
"""

_SCRIPT = """
document.querySelectorAll('td[data-cell]').forEach(function (cell) {
  cell.addEventListener('click', function () {
    document.querySelectorAll('td.sel').forEach(function (c) { c.classList.remove('sel'); });
    cell.classList.add('sel');
    document.getElementById('panel').textContent = cell.getAttribute('title');
  });
});
"""


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _class(name: str) -> str:
    return name.replace(" ", "")


def matrix_keys(card: Scorecard) -> list[str]:
    """The columns: keys some cassette has a finding on, most frequent first."""
    return [tally.key for tally in card.tallies]


def _cell(result: CassetteResult, key: str) -> tuple[str, str]:
    """(css class, title) of one cassette's cell for one key."""
    if result.outcome not in COMPARED:
        return "notcompared", f"{result.cassette} / {key}: not compared ({result.outcome.value})"
    found = [f for f in result.findings if f.key == key]
    if not found:
        return "match", f"{result.cassette} / {key}: as the golden"
    css = "accepted" if all(f in result.accepted for f in found) else found[0].kind
    return css, "\n\n".join(_finding_text(result, f) for f in found)


def _finding_text(result: CassetteResult, found: Finding) -> str:
    accepted = " (accepted by the baseline)" if found in result.accepted else ""
    lines = [f"{result.cassette} / {found.key}: {found.kind}{accepted}"]
    if found.expected is None and found.actual is None:
        lines.append(found.line)
    else:
        lines += [f"expected: {_value(found.expected)}", f"actual:   {_value(found.actual)}"]
    return "\n".join(lines)


def _value(value: object) -> str:
    text = "(absent)" if value is None else repr(value)
    return text if len(text) <= SHOWN_CHARS else text[: SHOWN_CHARS - 3] + "..."


def scorecard_html(card: Scorecard) -> str:
    keys = matrix_keys(card)
    counts = outcome_counts(card.results)
    chips = "".join(f'<span class="{_class(o.value)}">{count} {_e(o.value)}</span>'
                    for o, count in counts.items() if count)
    if card.baseline is not None:
        passed = sum(1 for result in card.results if result.passed)
        chips += f'<span class="accepted">{passed} of {len(card.results)} pass with the baseline</span>'
    head = "".join(f'<th title="{_e(key)}"><div>{_e(key)}</div></th>' for key in keys)
    rows = "".join(_matrix_row(result, keys) for result in card.results)
    tallies = "".join(
        f'<tr><td class="k">{_e(t.key)}</td><td>{t.total}</td><td>{t.missing}</td><td>{t.unexpected}</td>'
        f'<td>{t.different}</td><td>{t.invalid}</td></tr>' for t in card.tallies)
    details = "".join(_details(result) for result in card.results if result.outcome is not Outcome.MATCH)
    stale = "".join(f"<li>{_e(entry)}</li>" for entry in card.stale)
    return _page(card, chips, head, rows, tallies, details, stale)


def _matrix_row(result: CassetteResult, keys: list[str]) -> str:
    """One cassette: its outcome, then one cell per attribute key (expected and actual in the title)."""
    outcome = result.outcome.value + (" (baseline)" if result.accepted and result.passed else "")
    cells = []
    for key in keys:
        css, title = _cell(result, key)
        cells.append(f'<td data-cell class="{css}" title="{_e(title)}"></td>')
    outcome_title = result.detail or result.outcome.value
    return (f'<tr><th class="row">{_e(result.cassette)}</th>'
            f'<td data-cell class="outcome {_class(result.outcome.value)}" title="{_e(outcome_title)}">'
            f'{_e(outcome)}</td>{"".join(cells)}</tr>')


def _matrix_attributes(card: Scorecard, keys: int) -> str:
    """The matrix's class (``dense`` for many keys) and the width of its sticky cassette column."""
    longest = max([8, *(len(result.cassette) for result in card.results)])
    width = round(longest * _ROW_HEAD_CHAR_PX) + 18
    return f'class="matrix{" dense" if keys >= DENSE_FROM else ""}" style="--row:{width}px"'


def _page(card: Scorecard, chips: str, head: str, rows: str, tallies: str, details: str, stale: str) -> str:
    """The self-contained page around the parts (inline style and script only: the CSP forbids the rest)."""
    legend = "".join(f'<span class="{css}">{label}</span>' for css, label in (
        ("match", "as the golden"), ("missing", "missing"), ("unexpected", "unexpected"), ("different", "different"),
        ("invalid", "invalid (spec)"), ("accepted", "accepted by the baseline"), ("notcompared", "not compared")))
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy"
 content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'">
<title>testopeninference conform: {_e(card.gateway)}</title><style>{_STYLE}</style></head>
<body>
<h1>Gateway conformance</h1>
<div class="meta">Gateway: <code>{_e(card.gateway)}</code><br>{_e(summary_line(card))}</div>
<div class="chips">{chips}</div>
<div class="legend">{legend}</div>
<p>Hover a cell for expected and actual; click it to pin them below.</p>
<div class="wrap"><table {_matrix_attributes(card, head.count("<th "))}>
<thead><tr><th class="corner">cassette</th><th class="outcome"><div>outcome</div></th>{head}</tr></thead>
<tbody>{rows}</tbody></table></div>
<div id="panel">(click a cell)</div>
<h2>Per attribute key</h2>
<table class="keys"><tr><th>key</th><th>cassettes</th><th>missing</th><th>unexpected</th><th>different</th>
<th>invalid</th></tr>{tallies}</table>
{f"<h2>Baseline entries that no longer occur</h2><ul>{stale}</ul>" if stale else ""}
<h2>Cassettes that do not match</h2>
{details or "<p>none</p>"}
<script>{_SCRIPT}</script>
</body></html>
"""


def _details(result: CassetteResult) -> str:
    lines = [f.line + ("  (accepted)" if f in result.accepted else "") for f in result.findings
             if f.key != OUTCOME_KEY]
    body = "\n".join(lines) or result.detail
    return (f"<details><summary>{_e(result.cassette)}: {_e(result.outcome.value)}</summary>"
            f"<pre>{_e(body)}</pre></details>")


def write_html(path: Path, card: Scorecard) -> None:
    write_atomic(path, scorecard_html(card))
