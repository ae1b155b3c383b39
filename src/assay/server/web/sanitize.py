"""Host HTML from bundles is a stranger's HTML: it is cleaned with an allow-list before any page shows it.

nh3 (the Rust ammonia sanitizer) keeps formatting, tables, links and images and drops scripts, styles,
event handlers, ``javascript:`` URLs, forms and frames. Links get ``rel="noopener noreferrer nofollow"``.
"""

from __future__ import annotations

import nh3

_TAGS = set(nh3.ALLOWED_TAGS) - {"area", "map"}
_ATTRIBUTES = {tag: set(attrs) for tag, attrs in nh3.ALLOWED_ATTRIBUTES.items()}
for _tag in ("td", "th"):
    _ATTRIBUTES.setdefault(_tag, set()).update({"colspan", "rowspan"})
_ATTRIBUTES.setdefault("a", set()).update({"href", "title"})
_ATTRIBUTES.setdefault("img", set()).update({"src", "alt", "title", "width", "height"})


def clean_html(html: str | None) -> str:
    """HTML safe to embed in our pages (no script can run, nothing can restyle or overlay the page)."""
    if not html:
        return ""
    return nh3.clean(
        html,
        tags=_TAGS,
        attributes=_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
    )
