"""Every page a reader opens, on the demo content (`manage.py seed_demo`).

The accessibility test and `make lighthouse` both go through this list, so a page
added here is checked by axe-core and scored by Lighthouse alike.
"""

# name: (path, whether the reader is a signed-in subscriber)
READER_PAGES: dict[str, tuple[str, bool]] = {
    "home": ("/", False),
    "archive": ("/archive/", False),
    "issue": ("/issues/diffusion-goes-latent/", False),
    "issue-top-10": ("/issues/top-10-papers-of-2022/", False),
    "issue-code": ("/issues/convolutions-strike-back/", False),
    "issue-paywall": ("/issues/scaling-laws-revisited/", False),
    "papers": ("/papers/", False),
    "papers-filtered": ("/papers/?year=2022&tag=vision", False),
    "paper": ("/papers/convnext/", False),
    "top-papers": ("/papers/top/2022/", False),
    "tag": ("/tags/vision/", False),
    "search": ("/search/", False),
    "search-query": ("/search/?q=diffusion", False),
    "subscribe": ("/subscribe/", False),
    "login": ("/account/login/", False),
    "account": ("/account/", True),
    # A signed-in subscriber's own pages: Save and Remove buttons, their papers.
    "issue-signed-in": ("/issues/top-10-papers-of-2022/", True),
    "paper-signed-in": ("/papers/convnext/", True),
    "library": ("/account/papers/", True),
    "pricing": ("/pricing/", False),
}
