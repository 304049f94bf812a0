"""Istio's Bookinfo sample in Python, close enough to Istio's that its task configs apply unchanged.

Four services, each run as `python -m samples.bookinfo <service>`:

- productpage: the HTML page (`/productpage`), sign-in (`/login`, `/logout`) and `/api/v1/products...`;
  calls details and reviews.
- details: `/details/<id>`, the book's facts.
- reviews: `/reviews/<id>`, in three versions (`--version v1|v2|v3`); v2 and v3 call ratings.
- ratings: `/ratings/<id>`, stars per reviewer.

Services find each other by name (`http://reviews:9080`) through the outbound proxy in
`HTTP_PROXY` (the sidecar), and copy tracing and `end-user` headers onto every call they make.
"""
