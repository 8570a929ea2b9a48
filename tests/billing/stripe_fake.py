"""A local server that answers like Stripe's API, for the stripe library to talk to
over real HTTP, and webhook events signed with the stripe library's own code."""

import copy
import itertools
import json
import re
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import stripe
from werkzeug import Request, Response

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "stripe"
SECRET_KEY = "sk_test_quire"
PUBLISHABLE_KEY = "pk_test_quire"
WEBHOOK_SECRET = "whsec_test_quire"
# The three settings that switch paid subscriptions on, as a worker's environment.
PAID_ENV = {
    "STRIPE_SECRET_KEY": SECRET_KEY,
    "STRIPE_PUBLISHABLE_KEY": PUBLISHABLE_KEY,
    "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
}


def load(name: str) -> dict[str, Any]:
    """Return a Stripe-shaped object from tests/fixtures/stripe/<name>.json."""
    return json.loads((FIXTURES / f"{name}.json").read_text())


def decode_form(pairs) -> dict[str, Any]:
    """Turn Stripe's form encoding (line_items[0][price]=...) back into a dict."""
    root: dict[str, Any] = {}
    for key, value in pairs:
        parts = re.findall(r"[^\[\]]+", key)
        node = root
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return _lists(root)


def _lists(node):
    if isinstance(node, dict):
        if node and all(k.isdigit() for k in node):
            return [_lists(node[k]) for k in sorted(node, key=int)]
        return {k: _lists(v) for k, v in node.items()}
    return node


def sign(payload: str, *, secret: str = WEBHOOK_SECRET, timestamp=None) -> str:
    """Return the Stripe-Signature header Stripe would send for this body."""
    return stripe.WebhookSignature.generate_signature_header(
        payload, secret, timestamp=timestamp
    )


class FakeStripe:
    """Stripe's API as far as Quire uses it, kept in memory."""

    def __init__(self, httpserver):
        self.server = httpserver
        self.lock = threading.Lock()
        self.ids = itertools.count(1)
        self.sessions: dict[str, dict] = {}
        self.subscriptions: dict[str, dict] = {}
        self.products: dict[str, dict] = {}
        self.prices: dict[str, dict] = {}
        self.idempotent: dict[str, dict] = {}
        self.requests: list[tuple[str, str, dict, dict]] = []
        self.down = False
        routes = [
            ("POST", r"^/v1/checkout/sessions$", self.create_session),
            ("GET", r"^/v1/subscriptions/(?P<id>[^/]+)$", self.get_subscription),
            ("DELETE", r"^/v1/subscriptions/(?P<id>[^/]+)$", self.cancel_subscription),
            ("POST", r"^/v1/billing_portal/sessions$", self.create_portal),
            ("POST", r"^/v1/products$", self.create_product),
            ("POST", r"^/v1/products/(?P<id>[^/]+)$", self.update_product),
            ("POST", r"^/v1/prices$", self.create_price),
            ("GET", r"^/v1/prices/(?P<id>[^/]+)$", self.get_price),
            ("POST", r"^/v1/prices/(?P<id>[^/]+)$", self.update_price),
            ("GET", r"^/checkout/pay/(?P<id>[^/]+)$", self.checkout_page),
            ("GET", r"^/portal/(?P<id>[^/]+)$", self.portal_page),
        ]
        for method, pattern, handler in routes:
            httpserver.expect_request(
                re.compile(pattern), method=method
            ).respond_with_handler(self._wrap(pattern, handler))

    @property
    def base_url(self) -> str:
        return self.server.url_for("/").rstrip("/")

    # --- plumbing -------------------------------------------------------------------

    def _wrap(self, pattern, handler):
        def respond(request: Request) -> Response:
            if self.down and request.path.startswith("/v1/"):
                return Response("upstream down", status=503)
            params = decode_form(request.form.items(multi=True))
            match = re.match(pattern, request.path)
            with self.lock:
                self.requests.append(
                    (request.method, request.path, params, dict(request.headers))
                )
                key = request.headers.get("Idempotency-Key", "")
                if request.method == "POST" and key in self.idempotent:
                    return self._json(self.idempotent[key])
                status, body = handler(params, **match.groupdict())
                if request.method == "POST" and key and status == 200:
                    self.idempotent[key] = body
            return self._json(body, status)

        return respond

    @staticmethod
    def _json(body, status=200) -> Response:
        if isinstance(body, str):
            return Response(body, status=status, content_type="text/html")
        return Response(
            json.dumps(body), status=status, content_type="application/json"
        )

    def _id(self, prefix: str) -> str:
        return f"{prefix}_{next(self.ids)}"

    def _missing(self, what: str, id: str):
        error = load("error_resource_missing")
        error["error"]["message"] = f"No such {what}: '{id}'"
        return 404, error

    def calls(self, method: str, path_prefix: str) -> list[dict]:
        return [
            p
            for m, path, p, _ in self.requests
            if m == method and path.startswith(path_prefix)
        ]

    # --- API ------------------------------------------------------------------------

    def create_session(self, params):
        session = load("checkout_session")
        session_id = self._id("cs_test")
        session.update(
            id=session_id,
            url=f"{self.base_url}/checkout/pay/{session_id}",
            client_reference_id=params.get("client_reference_id"),
            customer=params.get("customer"),
            customer_email=params.get("customer_email"),
            metadata=params.get("metadata", {}),
            success_url=params["success_url"],
            cancel_url=params["cancel_url"],
            allow_promotion_codes=params.get("allow_promotion_codes") == "true",
        )
        session["_params"] = params
        self.sessions[session_id] = session
        return 200, {k: v for k, v in session.items() if not k.startswith("_")}

    def get_subscription(self, params, id):
        if id not in self.subscriptions:
            return self._missing("subscription", id)
        return 200, self.subscriptions[id]

    def cancel_subscription(self, params, id):
        if id not in self.subscriptions:
            return self._missing("subscription", id)
        self.subscriptions[id].update(
            status="canceled", canceled_at=int(time.time()), ended_at=int(time.time())
        )
        return 200, self.subscriptions[id]

    def create_portal(self, params):
        portal = load("billing_portal_session")
        portal.update(
            id=self._id("bps"),
            customer=params["customer"],
            return_url=params.get("return_url"),
        )
        portal["url"] = f"{self.base_url}/portal/{portal['id']}"
        return 200, portal

    def create_product(self, params):
        product = load("product")
        product.update(id=self._id("prod"), name=params["name"])
        product["description"] = params.get("description")
        product["metadata"] = params.get("metadata", {})
        self.products[product["id"]] = product
        return 200, product

    def update_product(self, params, id):
        if id not in self.products:
            return self._missing("product", id)
        self.products[id].update(
            {k: v for k, v in params.items() if k in ("name", "description")}
        )
        if "active" in params:
            self.products[id]["active"] = params["active"] == "true"
        return 200, self.products[id]

    def create_price(self, params):
        price = load("price")
        price.update(
            id=self._id("price"),
            product=params["product"],
            currency=params["currency"],
            unit_amount=int(params["unit_amount"]),
            nickname=params.get("nickname"),
        )
        price["recurring"]["interval"] = params["recurring"]["interval"]
        self.prices[price["id"]] = price
        return 200, price

    def get_price(self, params, id):
        if id not in self.prices:
            return self._missing("price", id)
        return 200, self.prices[id]

    def update_price(self, params, id):
        if id not in self.prices:
            return self._missing("price", id)
        if "active" in params:
            self.prices[id]["active"] = params["active"] == "true"
        return 200, self.prices[id]

    def checkout_page(self, params, id):
        session = self.sessions.get(id)
        if session is None:
            return 404, "<h1>No such checkout</h1>"
        return 200, (
            "<!doctype html><title>Stripe Checkout (test)</title>"
            f"<h1>Pay Quire</h1><p id='session'>{id}</p>"
            f"<p id='email'>{session.get('customer_email') or ''}</p>"
        )

    def portal_page(self, params, id):
        return 200, "<!doctype html><title>Billing portal (test)</title><h1>Portal</h1>"

    # --- what a customer does at Stripe ---------------------------------------------

    def add_price(self, *, price_id: str, amount: int, interval: str, product="prod_1"):
        price = load("price")
        price.update(id=price_id, unit_amount=amount, product=product)
        price["recurring"]["interval"] = interval
        self.prices[price_id] = price
        return price

    def complete_checkout(self, session_id: str, *, status: str = "active") -> dict:
        """Pay a Checkout Session: a customer and a subscription now exist."""
        session = self.sessions[session_id]
        params = session["_params"]
        customer = session.get("customer") or self._id("cus")
        subscription = load("subscription")
        subscription_id = self._id("sub")
        subscription.update(id=subscription_id, customer=customer, status=status)
        subscription["metadata"] = params.get("subscription_data", {}).get(
            "metadata", {}
        )
        item = subscription["items"]["data"][0]
        line = params["line_items"][0]
        if "price" in line:
            price = copy.deepcopy(self.prices.get(line["price"]) or load("price"))
            price["id"] = line["price"]
        else:
            data = line["price_data"]
            price = load("price")
            price.update(
                id=self._id("price"),
                unit_amount=int(data["unit_amount"]),
                currency=data["currency"],
                product=data["product"],
            )
            price["recurring"]["interval"] = data["recurring"]["interval"]
        item["price"] = price
        item["subscription"] = subscription_id
        now = int(time.time())
        item["current_period_start"] = now
        days = 365 if price["recurring"]["interval"] == "year" else 30
        item["current_period_end"] = now + days * 86400
        self.subscriptions[subscription_id] = subscription
        session.update(
            status="complete",
            payment_status="paid",
            customer=customer,
            subscription=subscription_id,
            customer_details={"email": session.get("customer_email")},
        )
        return subscription

    def session_object(self, session_id: str) -> dict:
        return {
            k: v for k, v in self.sessions[session_id].items() if not k.startswith("_")
        }

    def set_subscription(self, subscription_id: str, **changes) -> dict:
        self.subscriptions[subscription_id].update(changes)
        return self.subscriptions[subscription_id]


def make_event(
    event_type: str, obj: dict, *, event_id: str | None = None, created=None
):
    """Return a Stripe event (as Stripe would POST it) around an object."""
    event = load("event")
    event.update(
        id=event_id or f"evt_{time.time_ns()}",
        type=event_type,
        created=created or int(time.time()),
        data={"object": copy.deepcopy(obj)},
    )
    return event


def invoice_for(subscription: dict, *, invoice_id="in_1", attempt_count=1) -> dict:
    invoice = load("invoice")
    invoice.update(
        id=invoice_id, customer=subscription["customer"], attempt_count=attempt_count
    )
    invoice["parent"]["subscription_details"]["subscription"] = subscription["id"]
    return invoice


@pytest.fixture
def fake_stripe(httpserver) -> FakeStripe:
    return FakeStripe(httpserver)


@pytest.fixture
def stripe_settings(settings, fake_stripe):
    """Turn paid tiers on, talking to the local Stripe."""
    settings.STRIPE_SECRET_KEY = SECRET_KEY
    settings.STRIPE_PUBLISHABLE_KEY = PUBLISHABLE_KEY
    settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
    settings.STRIPE_API_BASE = fake_stripe.base_url
    return settings
