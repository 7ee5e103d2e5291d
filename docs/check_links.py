"""Check every internal link of the built site: each relative ``href`` and ``src`` of every
HTML page names a file that exists, and each ``#fragment`` an ``id`` in that file.

    python docs/check_links.py [docs/_build/html]

Prints the broken links and exits 1 when there is one; external links (with a scheme) are
not fetched: the build machine may be offline.
"""
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit


class _Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.links, self.ids = [], set()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if attrs.get("id"):
            self.ids.add(attrs["id"])
        if tag == "a" and attrs.get("name"):
            self.ids.add(attrs["name"])
        for key in ("href", "src"):
            if attrs.get(key) and not (tag == "link" and key == "href"
                                       and "stylesheet" not in (attrs.get("rel") or "")):
                self.links.append(attrs[key])


def _parse(path, cache):
    if path not in cache:
        page = _Page()
        page.feed(path.read_text(encoding="utf-8", errors="replace"))
        cache[path] = page
    return cache[path]


def broken_links(root):
    """[(page, link, why)] of every internal link of the HTML under ``root`` that does not
    resolve."""
    root = Path(root).resolve()
    cache, broken = {}, []
    for page_path in sorted(root.rglob("*.html")):
        if "_static" in page_path.relative_to(root).parts:
            continue  # the theme's own templates, not pages
        for link in _parse(page_path, cache).links:
            parts = urlsplit(link)
            if parts.scheme or parts.netloc or link.startswith(("mailto:", "javascript:")):
                continue  # external: not fetched
            target = (page_path.parent / unquote(parts.path)).resolve() if parts.path \
                else page_path
            if target.is_dir():
                target = target / "index.html"
            if not target.exists():
                broken.append((page_path.relative_to(root), link, "no such file"))
            elif parts.fragment and target.suffix == ".html" and \
                    unquote(parts.fragment) not in _parse(target, cache).ids:
                broken.append((page_path.relative_to(root), link, "no such anchor"))
    return broken


def main(argv):
    root = Path(argv[0] if argv else Path(__file__).parent / "_build" / "html")
    if not (root / "index.html").exists():
        print(f"check_links: no built site in {root} (build it first)", file=sys.stderr)
        return 2
    broken = broken_links(root)
    for page, link, why in broken:
        print(f"{page}: {link} ({why})")
    pages = sum("_static" not in p.relative_to(root).parts for p in root.rglob("*.html"))
    print(f"check_links: {len(broken)} broken internal links in {pages} pages")
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
