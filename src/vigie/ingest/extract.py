"""What a page shows: every picture and video a browser would load from its HTML and CSS, and its links.

Read with a browser's HTML parser (selectolax/Lexbor: broken HTML is read as a browser would) and,
for CSS, a real CSS tokenizer (tinycss2: comments, escapes, quotes and nested blocks are what the CSS
syntax says, which no regular expression gets right). Sources of media, in the order they are listed:

* ``img``/``source``/``video``/``audio``/``embed``/``input type=image``: ``src``, ``poster``, ``srcset``
  (parsed by the HTML standard's algorithm: a URL runs to the next white space, so ``/w_400,h_300/u.jpg``
  is one URL) and the lazy-load attributes of common scripts (``data-src``, ``data-lazy-src``,
  ``data-srcset``, ...);
* ``og:image``/``og:video``/``twitter:image`` meta tags, ``link rel=image_src``;
* links (``a``, ``area``) to files with a picture or video extension;
* background pictures: ``data-bg``/``data-background`` on any element, ``style`` attributes, ``<style>``
  elements and linked stylesheets (``url()``, ``image-set()``; ``@import`` followed, fonts skipped);
* SVG ``<image href>``/``xlink:href``; ``link rel=preload as=image`` (``href``, ``imagesrcset``);
* JSON-LD (``image``, ``contentUrl``, ``thumbnailUrl``, ``logo``... at any depth).

Pages: ``a``, ``area``, ``iframe``, ``frame``, ``link rel=next/prev`` (pagination). A meta refresh (and
the ``Refresh`` header, read by the crawler with `parse_refresh`) is kept apart: it acts like a redirect.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit, urlunsplit

MEDIA_EXTENSIONS = (".jpg", ".jpeg", ".jpe", ".png", ".gif", ".webp", ".bmp", ".tif", ".tiff", ".heic", ".heif",
                    ".avif", ".mp4", ".m4v", ".webm", ".mov", ".mkv", ".avi", ".3gp", ".wmv", ".flv", ".mpg",
                    ".mpeg")
SRC_ATTRS = ("src", "data-src", "data-original", "poster", "data-lazy-src", "data-lazy", "data-original-src",
             "data-full", "data-full-src", "data-large", "data-large-src", "data-hi-res", "data-zoom-image",
             "data-image", "data-img", "data-echo", "data-pagespeed-lazy-src", "data-actualsrc")
SRCSET_ATTRS = ("srcset", "data-srcset", "data-lazy-srcset", "data-original-set")
BG_ATTRS = ("data-bg", "data-background", "data-background-image", "data-bg-src", "data-bgset")
META_MEDIA = ("og:image", "og:image:url", "og:image:secure_url", "og:video", "og:video:url", "og:video:secure_url",
              "twitter:image", "twitter:image:src", "twitter:player:stream")
JSONLD_KEYS = frozenset({"image", "contentUrl", "thumbnailUrl", "thumbnail", "logo", "photo", "primaryImageOfPage"})
_WS = " \t\n\r\f"
#: Script types a browser runs (an empty type is JavaScript).
_SCRIPT_TYPES = frozenset({"", "text/javascript", "application/javascript", "module", "text/ecmascript",
                           "application/ecmascript"})


@dataclass
class PageLinks:
    media: list[str] = field(default_factory=list)
    pages: list[str] = field(default_factory=list)
    stylesheets: list[str] = field(default_factory=list)
    #: Where a meta refresh sends the browser (acts like a redirect).
    refresh: list[str] = field(default_factory=list)
    #: Scripts the page runs (inline or linked): with no media found, a sign its pictures come from script.
    scripts: int = 0


def is_media_link(url: str) -> bool:
    return urlsplit(url).path.lower().endswith(MEDIA_EXTENSIONS)


def parse_srcset(value: str) -> list[str]:
    """The URLs of a ``srcset`` attribute, by the HTML standard's "parse a srcset attribute" steps."""
    urls: list[str] = []
    pos, n = 0, len(value)
    while True:
        while pos < n and (value[pos] in _WS or value[pos] == ","):
            pos += 1
        if pos >= n:
            return urls
        start = pos
        while pos < n and value[pos] not in _WS:
            pos += 1
        url = value[start:pos]
        if url.endswith(","):  # "a.jpg," : no descriptors
            url = url.rstrip(",")
            if url:
                urls.append(url)
            continue
        in_parens = False  # descriptors run to a comma outside parentheses
        while pos < n:
            c = value[pos]
            pos += 1
            if in_parens:
                in_parens = c != ")"
            elif c == "(":
                in_parens = True
            elif c == ",":
                break
        urls.append(url)


def parse_refresh(value: str | None) -> str | None:
    """The URL of a ``Refresh`` header or meta refresh (``"0; url=/next"``), by the HTML standard's
    shared declarative refresh steps; None when it only reloads the page."""
    if not value:
        return None
    s, i = value.strip(_WS), 0
    n = len(s)
    while i < n and (s[i].isdigit() or s[i] == "."):
        i += 1
    if i == 0:
        return None
    if i < n and s[i] not in ";," + _WS:
        return None
    while i < n and s[i] in _WS:
        i += 1
    if i < n and s[i] in ";,":
        i += 1
    while i < n and s[i] in _WS:
        i += 1
    rest = s[i:]
    if rest[:3].lower() == "url":
        j = 3
        while j < len(rest) and rest[j] in _WS:
            j += 1
        if j < len(rest) and rest[j] == "=":
            j += 1
            while j < len(rest) and rest[j] in _WS:
                j += 1
            rest = rest[j:]
    if rest[:1] in ("'", '"'):
        q, rest = rest[0], rest[1:]
        rest = rest.split(q, 1)[0]
    rest = rest.strip(_WS)
    return rest or None


# --------------------------------------------------------------------------------------------------- CSS


def _css_walk(tokens, out: list[str]) -> None:
    for t in tokens or ():
        kind = getattr(t, "type", None)
        if kind == "url":
            out.append(t.value)
        elif kind == "function":
            if t.lower_name == "url":
                out += [a.value for a in t.arguments if a.type == "string"][:1]
            elif t.lower_name.endswith("image-set"):
                out += [a.value for a in t.arguments if a.type == "string"]
                _css_walk([a for a in t.arguments if a.type != "string"], out)
            else:
                _css_walk(t.arguments, out)
        elif kind in ("() block", "[] block", "{} block"):
            _css_walk(t.content, out)


def css_value_urls(text: str) -> list[str]:
    """URLs in CSS component values: a ``style`` attribute, a ``data-bg="url(...)"``."""
    import tinycss2

    out: list[str] = []
    _css_walk(tinycss2.parse_component_value_list(text, skip_comments=True), out)
    return out


def _rules(rules, media: list[str], imports: list[str]) -> None:
    import tinycss2

    for r in rules:
        if r.type == "at-rule":
            kw = r.lower_at_keyword
            if kw == "import":
                found: list[str] = []
                for t in r.prelude:
                    if t.type == "string":
                        found.append(t.value)
                _css_walk(r.prelude, found)
                imports += found[:1]
            elif kw == "font-face":
                continue  # fonts, not pictures
            elif r.content is not None:
                _rules(tinycss2.parse_rule_list(r.content, skip_comments=True, skip_whitespace=True), media,
                       imports)
        elif r.type == "qualified-rule":
            _css_walk(r.content, media)


def parse_stylesheet(css: bytes | str, base_url: str) -> tuple[list[str], list[str]]:
    """(picture URLs, imported stylesheet URLs) of a stylesheet, absolute."""
    import tinycss2

    if isinstance(css, bytes):
        rules, _enc = tinycss2.parse_stylesheet_bytes(css, skip_comments=True, skip_whitespace=True)
    else:
        rules = tinycss2.parse_stylesheet(css, skip_comments=True, skip_whitespace=True)
    media: list[str] = []
    imports: list[str] = []
    _rules(rules, media, imports)
    return _absolute(media, base_url), _absolute(imports, base_url)


# -------------------------------------------------------------------------------------------------- HTML


def _clean(raw: str | None, base: str) -> str | None:
    if not raw:
        return None
    raw = raw.strip(_WS)
    if not raw or raw.lower().startswith(("data:", "javascript:", "mailto:", "#", "blob:", "tel:", "about:")):
        return None
    try:
        u = urljoin(base, raw)
        p = urlsplit(u)
        if p.scheme in ("http", "https") and p.hostname:
            return urlunsplit((p.scheme, p.netloc, p.path or "/", p.query, ""))
    except ValueError:
        pass
    return None


def _absolute(urls: list[str], base: str) -> list[str]:
    out = [_clean(u, base) for u in urls]
    return list(dict.fromkeys(u for u in out if u))


def _jsonld(obj, out: list[str], in_image: bool = False, depth: int = 0) -> None:
    if depth > 20:
        return
    if isinstance(obj, str):
        if in_image:
            out.append(obj)
    elif isinstance(obj, list):
        for v in obj:
            _jsonld(v, out, in_image, depth + 1)
    elif isinstance(obj, dict):
        for k, v in obj.items():
            if k in JSONLD_KEYS or (in_image and k == "url"):
                _jsonld(v, out, True, depth + 1)
            elif not isinstance(v, str):
                _jsonld(v, out, False, depth + 1)


def _rel(node) -> set[str]:
    return set((node.attributes.get("rel") or "").lower().split())


def parse_page(html: bytes, base_url: str) -> PageLinks:
    """Media, page links, stylesheets and refresh targets of an HTML page (see the module docstring)."""
    from selectolax.lexbor import LexborHTMLParser

    tree = LexborHTMLParser(html)
    base = base_url
    b = tree.css_first("base[href]")
    if b is not None and b.attributes.get("href"):
        base = urljoin(base_url, b.attributes["href"].strip())
    media: list[str] = []
    pages: list[str] = []
    sheets: list[str] = []
    refresh: list[str] = []

    def add(lst: list[str], raw: str | None, against: str = base) -> None:
        u = _clean(raw, against)
        if u:
            lst.append(u)

    for node in tree.css("img, source, video, audio, embed, input[type=image]"):
        a = node.attributes
        for attr in SRC_ATTRS:
            add(media, a.get(attr))
        for attr in SRCSET_ATTRS:
            if a.get(attr):
                for u in parse_srcset(a[attr]):
                    add(media, u)
    for node in tree.css("meta"):
        a = node.attributes
        prop = (a.get("property") or a.get("name") or "").lower()
        if prop in META_MEDIA:
            add(media, a.get("content"))
        if (a.get("http-equiv") or "").lower() == "refresh":
            add(refresh, parse_refresh(a.get("content")))
    for node in tree.css("link[rel]"):
        a, rel = node.attributes, _rel(node)
        if "image_src" in rel:
            add(media, a.get("href"))
        if "preload" in rel and (a.get("as") or "").lower() in ("image", "video"):
            add(media, a.get("href"))
            for u in parse_srcset(a.get("imagesrcset") or ""):
                add(media, u)
        if "stylesheet" in rel:
            add(sheets, a.get("href"))
        if rel & {"next", "prev", "previous"}:  # pagination declared in the head
            add(pages, a.get("href"))
    for node in tree.css("a[href], area[href], iframe[src], frame[src]"):
        a = node.attributes
        found: list[str] = []
        add(found, a.get("href") or a.get("src"))
        for u in found:
            (media if is_media_link(u) else pages).append(u)
    for node in tree.css(",".join(f"[{x}]" for x in BG_ATTRS)):
        for attr in BG_ATTRS:
            v = node.attributes.get(attr)
            if not v:
                continue
            if "url(" in v.lower():
                for u in css_value_urls(v):
                    add(media, u)
            elif attr == "data-bgset":
                for u in parse_srcset(v):
                    add(media, u)
            else:
                add(media, v)
    for node in tree.css("[style]"):
        for u in css_value_urls(node.attributes.get("style") or ""):
            add(media, u)
    for node in tree.css("style"):
        got, imports = parse_stylesheet(node.text() or "", base)
        media += got
        sheets += imports
    for node in tree.css("image"):  # SVG
        a = node.attributes
        add(media, a.get("href") or a.get("xlink:href"))
    for node in tree.css("script[type]"):
        if (node.attributes.get("type") or "").strip().lower() != "application/ld+json":
            continue
        try:
            data = json.loads(node.text() or "")
        except ValueError:
            continue
        found = []
        _jsonld(data, found)
        for u in found:
            add(media, u)
    scripts = sum(1 for node in tree.css("script")
                  if (node.attributes.get("type") or "").strip().lower() in _SCRIPT_TYPES
                  and (node.attributes.get("src") or (node.text() or "").strip()))
    return PageLinks(list(dict.fromkeys(media)), list(dict.fromkeys(pages)), list(dict.fromkeys(sheets)),
                     list(dict.fromkeys(refresh)), scripts)
