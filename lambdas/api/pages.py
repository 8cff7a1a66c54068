"""The approval-link pages: tiny, self-contained HTML. GET shows what would be decided and two
buttons; only the buttons' POST decides, so link scanners and chat previews that follow the
link change nothing. Everything shown is escaped."""

from __future__ import annotations

from html import escape

from ..domain.grant import CONTEXT_LABELS, REASON, Grant, context_rows, summary_rows
from .models import is_https_link

HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Robots-Tag": "noindex, nofollow",
}
STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem;color:#222}"
    "dt{font-weight:600}dd{margin:0 0 .6rem 0}button{font-size:1rem;padding:.6rem 1.4rem;margin-right:1rem}"
    ".approve{background:#1a7f37;color:#fff;border:0}.deny{background:#cf222e;color:#fff;border:0}"
)


def _page(title: str, body: str) -> str:
    return (
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'><meta name='robots' content='noindex'>"
        f"<title>{escape(title)}</title><style>{STYLE}</style></head><body><h1>{escape(title)}</h1>{body}</body></html>"
    )


def _summary(grant: Grant) -> str:
    """The request, the requester's reason (one line) quoted as what it is: their words."""
    rows = [("Request", grant.id), *summary_rows(grant)]
    return (
        "<dl>"
        + "".join(
            f"<dt>{escape(k)}</dt><dd>" + (f"<q>{escape(v)}</q>" if k == REASON else escape(v)) + "</dd>"
            for k, v in rows
        )
        + "</dl>"
    )


def _href(url: str) -> str | None:
    """``url`` as an attribute value if it may be a link (the API's own rule: ``https://``, a host,
    nothing that could leave the attribute), else None and it is shown as text only. The API
    refuses anything else already; this is the page not trusting that."""
    return escape(url, quote=True) if is_https_link(url) else None


def _context(grant: Grant) -> str:
    """The request's context, every value the requester's words: quoted, escaped; the link is the
    text it is (the whole of it, so what you read is where it goes) and opens with no referrer."""
    rows = context_rows(grant.context)
    if not rows:
        return ""
    items = []
    url = grant.context.incident_url if grant.context else None
    for label, value in rows:
        href = _href(url) if url and label == CONTEXT_LABELS["incident_url"] else None
        shown = (
            f"<a href='{href}' rel='noopener noreferrer nofollow' target='_blank'>{escape(value)}</a>"
            if href and value == url
            else f"<q>{escape(value)}</q>"
        )
        items.append(f"<dt>{escape(label)}</dt><dd>{shown}</dd>")
    return (
        "<h2>What the requester says this is for</h2>"
        "<p>Their words, not checked by eks-jit.</p><dl>" + "".join(items) + "</dl>"
    )


def confirm(grant: Grant, approver: str) -> str:
    form = (
        "<form method='post'>"
        "<p><label>Comment (optional)<br><input name='comment' maxlength='500' size='50'></label></p>"
        "<button class='approve' type='submit' name='decision' value='approve'>Approve</button>"
        "<button class='deny' type='submit' name='decision' value='deny'>Deny</button></form>"
    )
    return _page(
        "Approve this access request?",
        f"<p>You are deciding as <b>{escape(approver)}</b>. Nothing happens until you press a button.</p>"
        + _summary(grant)
        + _context(grant)
        + form,
    )


def result(grant: Grant, verdict: str) -> str:
    word = "approved" if verdict == "approve" else "denied"
    return _page(
        f"You {word} this request", f"<p>The request is now <b>{escape(grant.status.value)}</b>.</p>" + _summary(grant)
    )


def closed(grant: Grant) -> str:
    return _page(
        "Nothing left to decide",
        f"<p>This request is already <b>{escape(grant.status.value)}</b>.</p>" + _summary(grant),
    )


def problem(title: str, message: str) -> str:
    return _page(title, f"<p>{escape(message)}</p><p>Nothing was changed.</p>")
