"""Accessibility checks run in the page itself (no axe-core, no CDN): form controls have names, one h1 and no
skipped heading level, images have alt text, text contrast (WCAG 2 relative luminance: 4.5:1, 3:1 for large
text) and the keyboard focus ring's contrast (3:1) against what surrounds it.

Colours come from computed styles; a background is resolved up the ancestor chain (alpha layers composited
over the white canvas). Text that is hidden, off screen, disabled, or drawn over a background image is
skipped explicitly: its background is not a colour we can compute.
"""

from __future__ import annotations

#: Shared JavaScript: colour parsing, WCAG luminance and contrast, background resolution, visibility.
_LIB = r"""
const parse = (c) => {
  const m = /rgba?\(([^)]+)\)/.exec(c || "");
  if (!m) return null;
  const p = m[1].split(/[\s,\/]+/).filter(Boolean).map(Number);
  return {r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1};
};
const over = (top, under) => {  // top composited over an opaque colour
  const a = top.a;
  return {r: top.r * a + under.r * (1 - a), g: top.g * a + under.g * (1 - a), b: top.b * a + under.b * (1 - a), a: 1};
};
const lum = (c) => {
  const ch = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
  return 0.2126 * ch(c.r) + 0.7152 * ch(c.g) + 0.0722 * ch(c.b);
};
const ratio = (a, b) => { const [x, y] = [lum(a), lum(b)].sort((p, q) => q - p); return (x + 0.05) / (y + 0.05); };
const hex = (c) => "#" + [c.r, c.g, c.b].map((v) => Math.round(v).toString(16).padStart(2, "0")).join("");
// The opaque colour behind `el`'s content, or null when an ancestor paints a background image.
const background = (el) => {
  const layers = [];
  for (let n = el; n && n.nodeType === 1; n = n.parentElement) {
    const cs = getComputedStyle(n);
    if (cs.backgroundImage && cs.backgroundImage !== "none") return null;
    const c = parse(cs.backgroundColor);
    if (c && c.a > 0) { layers.push(c); if (c.a >= 1) break; }
  }
  return layers.reverse().reduce((under, top) => over(top, under), {r: 255, g: 255, b: 255, a: 1});
};
const hidden = (el) => {
  if (!el.getClientRects().length) return true;
  const cs = getComputedStyle(el);
  if (cs.visibility !== "visible") return true;
  for (let n = el; n && n.nodeType === 1; n = n.parentElement) if (getComputedStyle(n).opacity === "0") return true;
  const r = el.getBoundingClientRect();
  return r.width === 0 || r.height === 0 || r.right <= 0;  // off screen: the skip link until focused
};
const describe = (el) => {
  let s = el.tagName.toLowerCase();
  if (el.id) s += "#" + el.id;
  else if (el.className && typeof el.className === "string") s += "." + el.className.trim().split(/\s+/).join(".");
  const t = (el.getAttribute("aria-label") || el.textContent || el.getAttribute("name") || "")
    .trim().replace(/\s+/g, " ");
  return t ? `${s} "${t.slice(0, 40)}"` : s;
};
"""

#: Returns a list of problems of the page as it is now (names, headings, images, text contrast).
PAGE_CHECKS = (
    "() => {"
    + _LIB
    + r"""
const problems = [];
// 1. every form control and button has an accessible name
const named = (el) => {
  if ((el.getAttribute("aria-label") || "").trim()) return true;
  const by = (el.getAttribute("aria-labelledby") || "").split(/\s+/).filter(Boolean)
    .map((id) => document.getElementById(id)).filter(Boolean);
  if (by.some((n) => n.textContent.trim())) return true;
  if (el.labels && [...el.labels].some((l) => l.textContent.trim())) return true;
  if (el.tagName === "BUTTON") return el.textContent.trim() !== "";
  if (el.tagName === "INPUT" && ["submit", "button", "reset"].includes(el.type)) return (el.value || "").trim() !== "";
  return false;
};
for (const el of document.querySelectorAll("input, select, textarea, button")) {
  if (el.type === "hidden" || hidden(el)) continue;
  if (!named(el)) problems.push(`no accessible name: ${describe(el)}`);
}
// 2. one h1, and no heading level skipped on the way down
const headings = [...document.querySelectorAll("h1, h2, h3, h4, h5, h6")].filter((h) => !hidden(h));
const h1s = headings.filter((h) => h.tagName === "H1").length;
if (h1s !== 1) problems.push(`${h1s} h1 headings (one expected)`);
let level = 0;
for (const h of headings) {
  const l = Number(h.tagName[1]);
  if (l > level + 1) problems.push(`heading level skipped: h${level || "-"} then ${describe(h)} (h${l})`);
  level = l;
}
// 3. images have alt text (alt="" marks a decorative one); svg images have a name
for (const img of document.querySelectorAll("img"))
  if (!img.hasAttribute("alt")) problems.push(`img without alt: ${img.src}`);
for (const svg of document.querySelectorAll("svg[role=img]"))
  if (!(svg.getAttribute("aria-label") || svg.getAttribute("aria-labelledby") || svg.querySelector("title")))
    problems.push(`svg image without a name: ${describe(svg)}`);
// 4. text contrast: every element with its own visible text
for (const el of document.querySelectorAll("body *")) {
  if (!["SCRIPT", "STYLE", "NOSCRIPT", "TEMPLATE", "OPTION"].includes(el.tagName) &&
      [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim())) {
    if (hidden(el) || el.closest("[disabled], [aria-disabled=true]")) continue;  // WCAG: inactive controls exempt
    const cs = getComputedStyle(el);
    const svgText = el instanceof SVGElement;
    let fg = parse(svgText ? cs.fill : cs.color);
    if (!fg) continue;
    const bg = background(svgText ? el.closest("svg") : el);
    if (bg === null) continue;  // text over an image: its contrast is not computable from styles
    let opacity = 1;
    for (let n = el; n && n.nodeType === 1; n = n.parentElement) opacity *= Number(getComputedStyle(n).opacity);
    fg = over({...fg, a: fg.a * opacity * (svgText ? Number(cs.fillOpacity) : 1)}, bg);
    const size = parseFloat(cs.fontSize), bold = Number(cs.fontWeight) >= 700;
    const large = size >= 24 || (bold && size >= 18.66);
    const need = large ? 3 : 4.5, got = ratio(fg, bg);
    if (got < need)
      problems.push(`text contrast ${got.toFixed(2)}:1 < ${need}:1 (${hex(fg)} on ${hex(bg)}, ${size}px): `
                    + describe(el));
  }
}
return problems;
}"""
)

#: For the focused element: a problem string when its focus ring is missing or under 3:1, else null.
FOCUS_CHECK = (
    "() => {"
    + _LIB
    + r"""
const el = document.activeElement;
if (!el || el === document.body || hidden(el)) return null;
const cs = getComputedStyle(el);
let ring = null, against;
if (cs.outlineStyle !== "none" && parseFloat(cs.outlineWidth) > 0) {
  ring = parse(cs.outlineColor);
  // an outline drawn outside the border box sits on the parent's background, one drawn inside on the element's
  against = parseFloat(cs.outlineOffset) < 0 ? background(el) : background(el.parentElement || el);
} else if (cs.boxShadow && cs.boxShadow !== "none") {
  ring = parse(cs.boxShadow);
  against = background(el.parentElement || el);
}
if (!ring || ring.a === 0) return `no visible focus ring: ${describe(el)}`;
if (against === null) return null;  // over an image: not computable
const solid = over(ring, against), got = ratio(solid, against);
if (got >= 3) return null;
return `focus ring contrast ${got.toFixed(2)}:1 < 3:1 (${hex(solid)} on ${hex(against)}): ${describe(el)}`;
}"""
)


def page_problems(page) -> list[str]:
    """The names, headings, images and text-contrast problems of the page as loaded."""
    return page.evaluate(PAGE_CHECKS)


def focus_problems(page, limit: int = 60) -> list[str]:
    """Tab through the page (up to ``limit`` stops, until focus comes back round) and check each focus ring."""
    page.evaluate("() => { document.activeElement && document.activeElement.blur(); window.scrollTo(0, 0); }")
    problems, seen = [], set()
    for _ in range(limit):
        page.keyboard.press("Tab")
        key = page.evaluate(
            "() => { const e = document.activeElement; if (!e || e === document.body) return null;"
            " const all = [...document.querySelectorAll('*')]; return e.tagName + ':' + all.indexOf(e); }"
        )
        if key is None or key in seen:
            break
        seen.add(key)
        problem = page.evaluate(FOCUS_CHECK)
        if problem:
            problems.append(problem)
    return problems


def problems(page) -> list[str]:
    """Every accessibility problem the checks find on the page."""
    return page_problems(page) + focus_problems(page)
