"""A group of findings as one Slack message (Block Kit, built with slack_sdk's models).

The message: a header (severity, how many findings, the group), then per finding a
section with its summary and subject, its evidence (for an anomaly: the value observed
against the expected band; for drift: the fields that changed; for a budget: spend,
forecast and the amount), a context line (kind, since when, fingerprint) and the
``kubeopera timeline`` command that shows more. Slack's documented limits
(api.slack.com/reference/block-kit/blocks) are kept here, not only checked by the SDK:
at most 50 blocks, a header's text 150 characters, a section's 3,000, a field's 2,000,
10 fields, 10 context elements. A group too large for 50 blocks shows its first findings
in full and sums up the rest by kind and namespace in a last section: nothing is cut
mid-block.
"""

import shlex
from collections import Counter
from collections.abc import Sequence
from typing import Any

from slack_sdk.models.blocks import (
    Block,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)

from kubeopera.models import Finding, FindingKind, FindingStatus, Severity
from kubeopera.sinks.notifiers.text import cut

MAX_BLOCKS = 50
MAX_HEADER = 150
MAX_SECTION = 3000
MAX_FIELD = 2000
MAX_FIELDS = 10
MAX_CONTEXT = 10
BLOCKS_PER_FINDING = 4  # section, evidence, context, divider
MAX_DRIFT_FIELDS = 8

_EMOJI = {
    Severity.CRITICAL: ":red_circle:",
    Severity.HIGH: ":large_orange_circle:",
    Severity.MEDIUM: ":large_yellow_circle:",
    Severity.LOW: ":large_blue_circle:",
    Severity.INFO: ":white_circle:",
}


def slack_message(group: str, findings: Sequence[Finding]) -> dict[str, Any]:
    """The webhook payload (``{"text", "blocks"}``) for ``findings`` of the group named
    ``group`` (its ``group_by`` values): every block within Slack's limits, at most
    ``MAX_BLOCKS`` of them. Raises ``ValueError`` for an empty group."""
    if not findings:
        raise ValueError("a message needs at least one finding")
    worst = max((f.severity for f in findings), key=list(Severity).index)
    resolved = all(f.status == FindingStatus.RESOLVED for f in findings)
    state = "resolved" if resolved else worst.value.upper()
    count = f"{len(findings)} finding" + ("s" if len(findings) != 1 else "")
    title = cut(f"{state} · {count} · {group}", MAX_HEADER)
    blocks: list[Block] = [HeaderBlock(text=PlainTextObject(text=title))]
    room = (MAX_BLOCKS - len(blocks) - 1) // BLOCKS_PER_FINDING  # one left for the rest
    shown = findings if len(findings) * BLOCKS_PER_FINDING <= MAX_BLOCKS - 1 else findings[:room]
    for finding in shown:
        blocks += _finding_blocks(finding)
    if len(shown) < len(findings):
        blocks.append(_the_rest(findings[len(shown) :]))
    elif isinstance(blocks[-1], DividerBlock):
        blocks.pop()
    assert len(blocks) <= MAX_BLOCKS
    return {"text": title, "blocks": [b.to_dict() for b in blocks]}


def _finding_blocks(finding: Finding) -> list[Block]:
    subject = finding.subject
    where = "/".join(p for p in (subject.cluster, subject.namespace) if p)
    summary = escape(finding.summary)
    headline = f"{_EMOJI[finding.severity]} *{summary}*"
    if finding.status == FindingStatus.RESOLVED:
        headline = f":white_check_mark: ~{summary}~ resolved"
    subject_text = escape(f"{subject.kind}/{subject.name}")
    fields = [
        MarkdownTextObject(text=cut(f"*Subject*\n{subject_text}", MAX_FIELD)),
        MarkdownTextObject(text=cut(f"*Where*\n{escape(where)}", MAX_FIELD)),
        *[
            MarkdownTextObject(text=cut(f"*{name}*\n{value}", MAX_FIELD))
            for name, value in _evidence(finding)
        ],
    ][:MAX_FIELDS]
    more = ["kubeopera", "timeline", "--cluster", subject.cluster]
    if subject.namespace:
        more += ["--namespace", subject.namespace]
    more += ["--name", subject.name, "--since", "7d"]
    context = [
        f"{finding.kind.value} · since {finding.first_seen:%Y-%m-%d %H:%M} UTC",
        f"fingerprint `{escape(finding.fingerprint)}`",
        f"more: `{escape(shlex.join(more))}`",
    ]
    return [
        SectionBlock(text=MarkdownTextObject(text=cut(headline, MAX_SECTION))),
        SectionBlock(fields=fields),
        ContextBlock(elements=[MarkdownTextObject(text=cut(c, MAX_FIELD)) for c in context]),
        DividerBlock(),
    ]


def _evidence(finding: Finding) -> list[tuple[str, str]]:
    """What shows the finding is real, as (name, value) fields."""
    evidence = finding.evidence
    if finding.kind == FindingKind.ANOMALY:
        unit = escape(str(evidence.get("unit", "")))
        fields = [("Observed", f"{_number(evidence.get('observed'))} {unit}".strip())]
        band = evidence.get("band")
        if isinstance(band, list | tuple) and len(band) == 2:
            fields.append(("Expected", f"{_number(band[0])} to {_number(band[1])} {unit}".strip()))
        fields.append(("Score", _number(evidence.get("score"))))
        return fields
    if finding.kind == FindingKind.BUDGET:
        low, high = evidence.get("forecast_interval") or (None, None)
        period = escape(str(evidence.get("period", "")))
        return [
            ("Spend", f"${_number(evidence.get('spend'))}"),
            (
                "Forecast",
                f"${_number(evidence.get('forecast'))} (${_number(low)} to ${_number(high)})",
            ),
            (
                "Budget",
                f"${_number(evidence.get('amount'))} {period}".strip(),
            ),
        ]
    if finding.kind == FindingKind.DRIFT:
        entries = evidence.get("entries", [])
        lines = [
            f"`{escape(str(e.get('path')))}`: {_json(e.get('expected'))} → {_json(e.get('live'))}"
            for e in entries[:MAX_DRIFT_FIELDS]
        ]
        if len(entries) > MAX_DRIFT_FIELDS:
            lines.append(f"and {len(entries) - MAX_DRIFT_FIELDS} more fields")
        return [("Changed fields", "\n".join(lines) or "-")]
    return []


def _the_rest(rest: Sequence[Finding]) -> SectionBlock:
    by = Counter(
        f"{f.kind.value} in {escape(f.subject.namespace or f.subject.cluster)}" for f in rest
    )
    lines = [f"• {n} x {what}" for what, n in by.most_common(20)]
    if len(by) > 20:
        lines.append(f"• and {len(by) - 20} more kinds of place")
    text = f"*…and {len(rest)} more findings:*\n" + "\n".join(lines)
    return SectionBlock(text=MarkdownTextObject(text=cut(text, MAX_SECTION)))


def _number(value: object) -> str:
    return f"{value:,.2f}" if isinstance(value, int | float) else "-"


def _json(value: str | None) -> str:
    """A drift value (JSON text as the drift processor writes it; None: absent)."""
    return "absent" if value is None else f"`{escape(cut(value, 120))}`"


def escape(text: str) -> str:
    """``text`` as literal mrkdwn: Slack's three control characters escaped, so a
    summary holding ``<!channel>`` or ``<http://x|y>`` shows as written and notifies
    no one (api.slack.com/reference/surfaces/formatting#escaping).

    >>> escape("<!channel> & co")
    '&lt;!channel&gt; &amp; co'
    """
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
