"""The Explore page's views: `dataset`, `preprocessing` and `errors`, over `common`'s bounded caches.

Each function draws one section of the page and is named for what it shows; the arrays and
captions come from `core.exploration`.
"""
