"""productpage's HTML: plain, self-contained pages (no scripts, fonts or stylesheets to fetch).

The visible texts are Istio's Bookinfo texts, since Istio's tasks tell readers what to look for
("Sorry, product reviews are currently unavailable for this book.").  Stable ids and data
attributes (`reviews-version`, `data-stars`, `data-color`) let tests and scripts read the page.
"""

from __future__ import annotations

import re
from html import escape
from typing import Any

from samples.bookinfo._client import Fetched

STYLE = """
body { font-family: sans-serif; margin: 0; color: #222; }
nav { background: #1f2937; color: #fff; padding: 0.8em 2em; display: flex; justify-content: space-between; }
nav a, nav button { color: #fff; }
main { max-width: 60em; margin: 0 auto; padding: 1em 2em; }
table { border-collapse: collapse; }
td, th { border: 1px solid #ccc; padding: 0.3em 0.8em; text-align: left; }
.error { color: #b91c1c; font-size: 1.2em; }
.review { border-left: 4px solid #93c5fd; padding: 0.5em 1em; margin: 1em 0; }
.stars { font-size: 1.4em; letter-spacing: 0.1em; }
"""

DETAIL_FIELDS = (
    ("author", "Author"), ("year", "Year"), ("type", "Type"), ("pages", "Pages"),
    ("publisher", "Publisher"), ("language", "Language"), ("ISBN-10", "ISBN-10"), ("ISBN-13", "ISBN-13"),
)


def _document(body: str) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1.0">\n'
        f"<title>Simple Bookstore App</title>\n<style>{STYLE}</style>\n</head>\n"
        f"<body>\n{body}\n</body>\n</html>\n"
    )


def _nav(user: str) -> str:
    if user:
        account = (f'<span id="user">Signed in as <b>{escape(user)}</b></span> '
                   '<a id="sign-out" href="logout">Sign out</a>')
    else:
        account = ('<form method="post" action="login" name="login_form">'
                   '<input name="username" placeholder="Username" required> '
                   '<input name="passwd" type="password" placeholder="Password"> '
                   '<button type="submit">Sign in</button></form>')
    return f'<nav><span>BookInfo Sample</span><span class="account">{account}</span></nav>'


def _details(fetched: Fetched) -> str:
    if fetched.ok and isinstance(fetched.body, dict):
        rows = "".join(
            f'<tr><th>{label}</th>'
            f'<td id="detail-{key.lower()}">{escape(str(fetched.body.get(key, "")))}</td></tr>'
            for key, label in DETAIL_FIELDS
        )
        return f'<h2>Book Details</h2>\n<table id="details-table">{rows}</table>'
    return ('<p class="error">Error fetching product details!</p>\n'
            '<p>Sorry, product details are currently unavailable for this book.</p>')


def reviews_version(reviews: dict[str, Any]) -> str:
    """The version that answered: our reviews say it; Istio's only name it in the pod name."""
    version = reviews.get("version")
    if isinstance(version, str) and version:
        return version
    match = re.search(r"-(v\d+)(?:-|$)", str(reviews.get("podname", "")))
    return match.group(1) if match else "unknown"


def _rating(rating: Any) -> str:
    if not isinstance(rating, dict):
        return ""
    stars = rating.get("stars")
    if isinstance(stars, int) and stars > 0:
        stars = min(stars, 5)
        color = escape(str(rating.get("color", "black")))
        return (f'<div class="stars" data-stars="{stars}" data-color="{color}" style="color: {color}" '
                f'aria-label="{stars} out of 5 stars">{"★" * stars}{"☆" * (5 - stars)}</div>')
    if rating.get("error"):
        return f'<p class="error rating-error">{escape(str(rating["error"]))}</p>'
    return ""


def _reviews(fetched: Fetched) -> str:
    if not (fetched.ok and isinstance(fetched.body, dict)):
        return ('<p class="error">Error fetching product reviews!</p>\n'
                '<p>Sorry, product reviews are currently unavailable for this book.</p>')
    body = fetched.body
    items = []
    for review in body.get("reviews", []):
        if not isinstance(review, dict):
            continue
        items.append(
            '<article class="review">'
            f'<blockquote>"{escape(str(review.get("text", "")))}"</blockquote>'
            f'<p class="reviewer">— {escape(str(review.get("reviewer", "")))}</p>'
            f'{_rating(review.get("rating"))}</article>'
        )
    served_by = escape(str(body.get("podname", "")))
    cluster = body.get("clustername")
    if cluster and cluster != "null":
        served_by += f" on cluster {escape(str(cluster))}"
    return (
        '<h2>Book Reviews</h2>\n'
        f'<div id="reviews-version">{escape(reviews_version(body))}</div>\n'
        f'<p>Reviews served by: <span id="reviews-podname">{served_by}</span></p>\n' + "\n".join(items)
    )


def render_productpage(product: dict[str, Any], details: Fetched, reviews: Fetched, user: str) -> str:
    # descriptionHtml is our own constant markup (as in Istio), so it is not escaped.
    return _document(
        f"{_nav(user)}\n<main>\n"
        f'<h1 id="product-title">{escape(product["title"])}</h1>\n'
        f'<p id="product-description">{product["descriptionHtml"]}</p>\n'
        f'<section id="details">\n{_details(details)}\n</section>\n'
        f'<section id="reviews">\n{_reviews(reviews)}\n</section>\n</main>'
    )


def render_index() -> str:
    return _document(
        '<main>\n<h1>Simple Bookstore App</h1>\n'
        "<p>Hello! This is a simple bookstore application consisting of four services: "
        "productpage, details, reviews (v1, v2, v3) and ratings.</p>\n"
        '<p><a href="productpage?u=normal">Normal user</a> | <a href="productpage?u=test">Test user</a></p>\n'
        "</main>"
    )


def render_login() -> str:
    return _document(f"{_nav('')}\n<main>\n<h1>Sign in to BookInfo</h1>\n</main>")
