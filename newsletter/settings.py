"""
Quire's one settings file, read from the environment.

With no environment at all, Quire runs in its *embedded default*: SQLite, Celery over
kombu's filesystem transport and email written as .eml files to an outbox folder,
everything under ``var/``. Each service is switched on by its variable being present
(DATABASE_URL, CELERY_BROKER_URL, EMAIL_URL, ...). The README lists every variable.

Project wiring, above every app: it may name and import any of them (the layers and
their import direction bind the apps, not this file).
"""

import ipaddress
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

from newsletter import csp as _csp

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()

# Everything Quire writes at run time in the embedded default lives here: the SQLite
# database, the Celery broker folders, beat's schedule, the email outbox and uploads.
VAR_DIR = Path(env.str("QUIRE_VAR_DIR", default=str(BASE_DIR / "var")))
if not VAR_DIR.is_absolute():
    VAR_DIR = BASE_DIR / VAR_DIR
# SQLite and the filesystem broker create files but not their folder.
VAR_DIR.mkdir(parents=True, exist_ok=True)

# DEBUG is on only in the embedded default: any DATABASE_URL turns it off unless
# DEBUG is set explicitly.
EMBEDDED = "DATABASE_URL" not in env
DEBUG = env.bool("DEBUG", default=EMBEDDED)


def _required(name: str, hint: str) -> str:
    value = env.str(name, default="")
    if not value:
        raise ImproperlyConfigured(f"Set the environment variable {name}: {hint}")
    return value


# https://docs.djangoproject.com/en/5.2/ref/settings/#secret-key
if DEBUG:
    SECRET_KEY = env.str("SECRET_KEY", default="quire-insecure-embedded-default-key")
else:
    SECRET_KEY = _required(
        "SECRET_KEY", "a long random string, e.g. from `openssl rand -hex 32`."
    )
    # .env.example's value is public: a site running on it could be signed into by
    # anyone (sessions, sign-in links and confirmation links are signed with it).
    if SECRET_KEY.startswith("change-me"):
        raise ImproperlyConfigured(
            "Set the environment variable SECRET_KEY: .env.example's placeholder is "
            "not a secret; use a long random string, e.g. from `openssl rand -hex 32`."
        )

# https://docs.djangoproject.com/en/5.2/ref/settings/#allowed-hosts
if DEBUG:
    ALLOWED_HOSTS = env.list(
        "ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"]
    )
else:
    ALLOWED_HOSTS = _required(
        "ALLOWED_HOSTS", "a comma-separated list of host names, e.g. news.example.org."
    ).split(",")


def _local_site_url(addr: str, port: str) -> str:
    """Return the address `make run` serves on, as a browser would type it."""
    # Bound to every interface, the server still answers on the loopback address.
    if addr in ("", "0.0.0.0", "::", "[::]"):  # noqa: S104 - naming it, not binding
        addr = "127.0.0.1"
    if ":" in addr and not addr.startswith("["):
        addr = f"[{addr}]"
    return f"http://{addr}:{port}"


# The public address of the site, used for links in emails and feeds. Unset, it is
# where `make run` (manage.py runall) binds: QUIRE_ADDR and QUIRE_PORT, which runall
# hands to the web server, the worker and beat alike, so all three link to one place.
SITE_URL = env.str(
    "SITE_URL",
    default=_local_site_url(
        env.str("QUIRE_ADDR", default="127.0.0.1"),
        env.str("QUIRE_PORT", default="8000"),
    ),
).rstrip("/")

INSTALLED_APPS = [
    # The admin's theme (django-unfold), before the admin so that its templates win;
    # Quire's templates override the few that must run under the CSP. Its basic
    # config: the default one would replace Quire's admin site with unfold's.
    "unfold.apps.BasicAppConfig",
    # Django's admin on Quire's own site (newsletter/adminsite.py): every action asks
    # for its permission, and staff pass two-factor authentication where required.
    "newsletter.apps.QuireAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.sitemaps",
    "django.contrib.humanize",
    "django.contrib.postgres",
    "markdownx",
    "axes",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "csp",
    "newsletter",
    "issues",
    "subscribers",
    "subscribers.billing",
    "issues.sending",
    "issues.analytics",
    "issues.dashboard",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Content-Security-Policy on every response that has none of its own.
    "newsletter.csp.QuireCSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    # Counts views of issue and paper pages, cached ones too; reads no cookie.
    "issues.analytics.middleware.PageViewMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Adds request.user.is_verified(): whether this session passed two-factor.
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: turns a locked-out sign-in into its page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "newsletter.urls"
WSGI_APPLICATION = "newsletter.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "newsletter.context_processors.site",
                "issues.context_processors.publication",
                # After Django's own csrf processor, which it replaces on pages
                # cached for every anonymous reader.
                "issues.context_processors.shared_csrf",
                "subscribers.context_processors.reader",
                "subscribers.context_processors.newsletters",
                "subscribers.billing.context_processors.billing",
            ],
        },
    },
]

# https://docs.djangoproject.com/en/5.2/ref/settings/#databases
# Embedded default: one SQLite file. Tests use a file too (not :memory:) so that a
# real Celery worker process can share the test database.
DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'quire.sqlite3'}")
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test.sqlite3")}
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            # WAL lets the web server read while a worker writes.
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
        }
    )
else:
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
# A host that drops off the network leaves its session open on the database server
# until TCP gives up: hours when the server has nothing to send, and a transaction
# the host had open keeps its row locks all that time (the batch a worker was
# claiming stays locked for every other worker and the reconciler). TCP keepalives
# on both ends (and a TCP user timeout for unacknowledged data) end such a session
# after about DATABASE_KEEPALIVE_SECONDS; 0 leaves it to the systems' defaults (e.g.
# behind a pooler that refuses the `options` startup parameter: set the server's
# tcp_keepalives_* there instead).
DATABASE_KEEPALIVE_SECONDS = env.int("DATABASE_KEEPALIVE_SECONDS", default=60)
if DATABASES["default"]["ENGINE"].startswith("django.db.backends.postgresql"):
    _options = DATABASES["default"].setdefault("OPTIONS", {})
    if DATABASE_KEEPALIVE_SECONDS > 0:
        _idle = max(1, DATABASE_KEEPALIVE_SECONDS // 2)
        _interval = max(1, DATABASE_KEEPALIVE_SECONDS // 6)
        _timeout_ms = DATABASE_KEEPALIVE_SECONDS * 1000
        # The client's end (libpq): the worker stops waiting on a dead server.
        _options.update(
            keepalives=1,
            keepalives_idle=_idle,
            keepalives_interval=_interval,
            keepalives_count=3,
            tcp_user_timeout=_timeout_ms,
        )
        # The server's end, for this session: it ends a dead host's session, rolls
        # back its transaction and frees its locks.
        _server = (
            f"-c tcp_keepalives_idle={_idle} -c tcp_keepalives_interval={_interval} "
            f"-c tcp_keepalives_count=3 -c tcp_user_timeout={_timeout_ms}"
        )
        _options["options"] = f"{_options.get('options', '')} {_server}".strip()
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Staff sign-in ------------------------------------------------------------------
# django-axes counts failed admin sign-ins per username and client IP (the same IP the
# rate limits use, see TRUSTED_PROXIES) and refuses that pair for AXES_COOLOFF_HOURS
# after AXES_FAILURE_LIMIT failures, even with the right password.
# https://django-axes.readthedocs.io/en/latest/4_configuration.html
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = env.float("AXES_COOLOFF_HOURS", default=1)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_CLIENT_IP_CALLABLE = "subscribers.throttling.client_ip"
AXES_LOCKOUT_TEMPLATE = "admin/locked_out.html"
# Staff who open the sign-in page itself (unfold's form carries no "next") land on
# the dashboard; Django's default is /accounts/profile/, which Quire has not.
LOGIN_REDIRECT_URL = "admin:index"
AXES_VERBOSE = False
# Two-factor authentication (django-otp: an authenticator app and recovery codes),
# enrolled at /admin/two-factor/. Superusers must use it when this is on; it is on
# whenever DEBUG is off, and off in the embedded default so that the login
# `make run` prints works at once. Any staff member who enrolled must use it.
QUIRE_REQUIRE_2FA_FOR_SUPERUSERS = env.bool(
    "QUIRE_REQUIRE_2FA_FOR_SUPERUSERS", default=not DEBUG
)
OTP_TOTP_ISSUER = env.str("OTP_TOTP_ISSUER", default="Quire")
# Secrets are shown once, to their owner, when they enrol; never in the admin.
OTP_ADMIN_HIDE_SENSITIVE_DATA = True

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": f"django.contrib.auth.password_validation.{name}"}
    for name in (
        "UserAttributeSimilarityValidator",
        "MinimumLengthValidator",
        "CommonPasswordValidator",
        "NumericPasswordValidator",
    )
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

# Static files are served by whitenoise in every mode, compressed and hashed when
# DEBUG is off. https://whitenoise.readthedocs.io/
STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(VAR_DIR / "staticfiles")))
MEDIA_URL = "/media/"
MEDIA_ROOT = Path(env.str("MEDIA_ROOT", default=str(VAR_DIR / "media")))
# Quire answers /media/ itself (newsletter/media.py: images as images, anything else
# as a download) unless a web server in front serves the media folder, as the
# proxy in docker-compose.yml does; then set QUIRE_SERVE_MEDIA=false.
QUIRE_SERVE_MEDIA = env.bool("QUIRE_SERVE_MEDIA", default=True)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

# --- Email -----------------------------------------------------------------------
# Embedded default: every message becomes one .eml file in var/outbox/ (open it with
# any mail program). EMAIL_URL (smtp://user:pass@host:587, smtp+tls://...,
# smtp+ssl://...) or EMAIL_HOST switches to SMTP.
EMAIL_OUTBOX_DIR = VAR_DIR / "outbox"
if "EMAIL_URL" in env:
    globals().update(env.email_url("EMAIL_URL"))
elif "EMAIL_HOST" in env:
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    EMAIL_HOST = env.str("EMAIL_HOST")
    EMAIL_PORT = env.int("EMAIL_PORT", default=587)
    EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", default="")
    EMAIL_HOST_PASSWORD = env.str("EMAIL_HOST_PASSWORD", default="")
    EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=EMAIL_PORT == 587)
    EMAIL_USE_SSL = env.bool("EMAIL_USE_SSL", default=EMAIL_PORT == 465)
else:
    EMAIL_BACKEND = "newsletter.mail.OutboxBackend"
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=30)
# Any django-anymail provider: EMAIL_BACKEND=anymail.backends.<esp>.EmailBackend and
# its settings as ANYMAIL_<SETTING> variables (ANYMAIL_MAILGUN_API_KEY=...,
# ANYMAIL_WEBHOOK_SECRET=user:pass for the tracking webhook at /email/events/).
# https://anymail.dev/en/stable/esps/
if "EMAIL_BACKEND" in env:
    EMAIL_BACKEND = env.str("EMAIL_BACKEND")
ANYMAIL = {
    key.removeprefix("ANYMAIL_"): value
    for key, value in env.ENVIRON.items()
    if key.startswith("ANYMAIL_")
}

# The sender of every email until the publication's settings in the admin name one
# (Publication.sender_email); without a name of its own here, emails carry the
# publication's name.
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="quire@localhost")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# --- Sending issues ----------------------------------------------------------------
# How many recipients a worker claims at once, sends over one connection, and how
# many batch tasks a send starts with (more workers pick up more of them).
SENDING_BATCH_SIZE = env.int("SENDING_BATCH_SIZE", default=200)
SENDING_PARALLELISM = env.int("SENDING_PARALLELISM", default=8)
# SMTP sessions each worker process keeps open at once (a relay tens of milliseconds
# away is limited by round trips, not CPU), and messages sent over one connection
# before it is closed and opened again (0: no limit). A server that answers 421 or
# 4.7.x, or refuses connections, gets fewer sessions for a while.
SENDING_SMTP_SESSIONS = env.int("SENDING_SMTP_SESSIONS", default=20)
SENDING_MESSAGES_PER_CONNECTION = env.int(
    "SENDING_MESSAGES_PER_CONNECTION", default=100
)
# Through a provider's API (django-anymail): recipients per API call (0: the
# provider's own batch size: Mailgun and SendGrid 1000, Postmark 500, Amazon SES 50,
# Resend 100, others 1), and API calls each worker process keeps in flight at once.
SENDING_PROVIDER_BATCH_SIZE = env.int("SENDING_PROVIDER_BATCH_SIZE", default=0)
SENDING_PROVIDER_CALLS = env.int("SENDING_PROVIDER_CALLS", default=4)
# Messages per second across all workers (0: no limit), for providers with quotas.
SENDING_RATE_LIMIT = env.float("SENDING_RATE_LIMIT", default=0)
# Transient failures (SMTP 4xx, timeouts, provider 429/5xx) are retried after
# base * 2**(attempt-1) seconds, at most SENDING_RETRY_MAX_DELAY, up to
# SENDING_MAX_ATTEMPTS attempts in all.
SENDING_MAX_ATTEMPTS = env.int("SENDING_MAX_ATTEMPTS", default=8)
SENDING_RETRY_BASE_DELAY = env.float("SENDING_RETRY_BASE_DELAY", default=30)
SENDING_RETRY_MAX_DELAY = env.float("SENDING_RETRY_MAX_DELAY", default=3600)
# A worker renews its hold on claimed rows while it works; rows whose hold is older
# than this belong to a dead worker and the reconciler frees them.
SENDING_LEASE_SECONDS = env.int("SENDING_LEASE_SECONDS", default=120)
# Times a worker may die on the same step of a send (rendering its email, or
# sending one recipient's message) before the send is paused with the reason,
# instead of Celery handing the task that kills it to worker after worker.
SENDING_MAX_WORKER_CRASHES = env.int("SENDING_MAX_WORKER_CRASHES", default=3)
# The deliverability guard: a send pauses itself, with the reason, when its complaint
# rate (spam complaints / accepted emails) goes above SENDING_PAUSE_COMPLAINT_RATE
# (0.3 %, the limit Gmail and Yahoo hold bulk senders to) or its hard-bounce rate
# (hard bounces / emails accepted or refused for good) above SENDING_PAUSE_BOUNCE_RATE,
# judged only from SENDING_PAUSE_MIN_SAMPLE emails on. 1 turns a limit off.
SENDING_PAUSE_COMPLAINT_RATE = env.float("SENDING_PAUSE_COMPLAINT_RATE", default=0.003)
SENDING_PAUSE_BOUNCE_RATE = env.float("SENDING_PAUSE_BOUNCE_RATE", default=0.05)
SENDING_PAUSE_MIN_SAMPLE = env.int("SENDING_PAUSE_MIN_SAMPLE", default=200)
# /healthz reports a send with emails still queued that has claimed or sent
# nothing for this many minutes (and any send paused because workers died on it).
SENDING_STALLED_MINUTES = env.int("SENDING_STALLED_MINUTES", default=10)
# Optional DKIM signing of every issue email (SMTP and outbox): the private key as
# PEM text or a path to a PEM file, the selector and the signing domain.
DKIM_PRIVATE_KEY = env.str("DKIM_PRIVATE_KEY", default="")
DKIM_SELECTOR = env.str("DKIM_SELECTOR", default="")
DKIM_DOMAIN = env.str("DKIM_DOMAIN", default="")

# --- Cache -----------------------------------------------------------------------
# https://docs.djangoproject.com/en/5.2/topics/cache/
# Shared by every process (rate limits must hold across gunicorn workers): files in
# var/cache/ in the embedded default, Redis when CACHE_URL or REDIS_URL is set.
if "CACHE_URL" in env:
    CACHES = {"default": env.cache_url("CACHE_URL")}
elif "REDIS_URL" in env:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": env.str("REDIS_URL"),
        }
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(VAR_DIR / "cache"),
        }
    }

# --- Client addresses ---------------------------------------------------------------
# Proxies whose X-Forwarded-For is believed (comma-separated IPs or CIDRs, e.g. the
# reverse proxy's address or its network, 172.18.0.0/16). Empty: nobody's is, and the
# client is the connection's own address. Rate limits and the admin sign-in lockout
# count per client address, so a header anyone can send must not choose it.
TRUSTED_PROXIES = env.list("TRUSTED_PROXIES", default=[])
for _proxy in TRUSTED_PROXIES:
    try:
        ipaddress.ip_network(_proxy.strip(), strict=False)
    except ValueError:
        raise ImproperlyConfigured(
            f"Set the environment variable TRUSTED_PROXIES to IP addresses or CIDR "
            f"networks separated by commas; {_proxy!r} is neither."
        ) from None
# Test emails of an issue a staff member may send per hour (each press of "Send
# the test" counts once).
QUIRE_TEST_SENDS_PER_HOUR = env.int("QUIRE_TEST_SENDS_PER_HOUR", default=10)

# --- Celery ----------------------------------------------------------------------
# https://docs.celeryq.dev/en/stable/userguide/configuration.html
# The database is the source of truth for sending; the broker only wakes workers up.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="filesystem://localhost//")
CELERY_BROKER_FOLDER = VAR_DIR / "broker"
if CELERY_BROKER_URL.startswith("filesystem://"):
    # One folder for in and out, shared by the web process and the worker.
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(CELERY_BROKER_FOLDER / "queue"),
        "data_folder_out": str(CELERY_BROKER_FOLDER / "queue"),
        "control_folder": str(CELERY_BROKER_FOLDER / "control"),
        "store_processed": False,
    }
    for _folder in ("queue", "control"):
        (CELERY_BROKER_FOLDER / _folder).mkdir(parents=True, exist_ok=True)
else:
    # With acks_late, Redis re-delivers a task not acknowledged within this many
    # seconds; it must be longer than the longest task (a send batch is seconds).
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=3600)
    }
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = None
# A task is acknowledged after it ran, so a worker killed mid-task leaves it queued;
# each worker process holds one message at a time.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_TIMEZONE = TIME_ZONE
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
# How often beat records that a worker is alive; /healthz calls a worker dead when its
# last heartbeat is older than QUIRE_HEARTBEAT_MAX_AGE seconds.
QUIRE_HEARTBEAT_INTERVAL = env.int("QUIRE_HEARTBEAT_INTERVAL", default=30)
QUIRE_HEARTBEAT_MAX_AGE = env.int("QUIRE_HEARTBEAT_MAX_AGE", default=120)
CELERY_BEAT_SCHEDULE = {
    "heartbeat": {
        "task": "newsletter.tasks.record_heartbeat",
        "schedule": QUIRE_HEARTBEAT_INTERVAL,
    },
    # Scheduled issues are rows polled here, never long Celery ETAs.
    "publish-due-issues": {
        "task": "issues.sending.tasks.publish_due_issues",
        "schedule": 30,
    },
    # Welcome steps: subscribers whose step has come due get its email (a few
    # set-based statements per active step; nothing when nobody is due).
    "send-welcome-steps": {
        "task": "issues.sending.tasks.send_welcome_steps",
        "schedule": env.int("WELCOME_STEPS_SECONDS", default=15),
    },
    # Re-queue work no live worker holds (lost broker messages, dead workers).
    "reconcile-sends": {
        "task": "issues.sending.tasks.reconcile_sends",
        "schedule": 60,
    },
    # Queue again Stripe events stored while the broker was down (or lost with it),
    # so a membership always ends up starting or ending as Stripe has it.
    "reconcile-stripe-events": {
        "task": "subscribers.billing.tasks.reconcile_stripe_events",
        "schedule": 60,
    },
    # Buffered opens, clicks and web views (and the provider's events) into the
    # daily figures the reports read.
    "flush-tracking": {
        "task": "issues.analytics.tasks.flush_tracking",
        "schedule": env.int("ANALYTICS_FLUSH_SECONDS", default=60),
    },
    # The dashboard's daily figures: today (and yesterday, for the day's turn) kept
    # current from the subscriber and membership tables, so pages never scan them.
    "refresh-daily-figures": {
        "task": "issues.dashboard.tasks.refresh_daily_figures",
        "schedule": 300,
    },
    # Papers whose arXiv version was last checked ARXIV_RECHECK_DAYS ago or more:
    # their latest version, asked of arXiv in batches (a paper page notes a newer
    # version than the one discussed).
    "check-arxiv-versions": {
        "task": "issues.tasks.check_arxiv_versions",
        "schedule": env.int("ARXIV_CHECK_SECONDS", default=3600),
    },
}

# --- Paper details from arXiv and Crossref (issues/paper_metadata) -----------------
# Where "Add paper from id" asks for a paper's details. Tests point them at a local
# server; leave them as they are in production.
# https://info.arxiv.org/help/api/user-manual.html
ARXIV_API_URL = env.str("ARXIV_API_URL", default="https://export.arxiv.org/api/query")
# https://api.crossref.org/swagger-ui/index.html (works/<doi>)
CROSSREF_API_URL = env.str("CROSSREF_API_URL", default="https://api.crossref.org")
# The address Crossref may write to about our requests, sent in the User-Agent (its
# "polite pool"); DEFAULT_FROM_EMAIL when unset.
CROSSREF_MAILTO = env.str("CROSSREF_MAILTO", default="")
# arXiv asks for one request every 3 seconds; Crossref's polite pool allows a few a
# second. Shared by every process through the cache.
ARXIV_MIN_INTERVAL = env.float("ARXIV_MIN_INTERVAL", default=3.0)
CROSSREF_MIN_INTERVAL = env.float("CROSSREF_MIN_INTERVAL", default=0.2)
# Seconds to wait for an answer; and the longest an author is kept waiting for a
# turn (longer, and the page says when to try again).
PAPER_LOOKUP_TIMEOUT = env.float("PAPER_LOOKUP_TIMEOUT", default=10.0)
PAPER_LOOKUP_MAX_WAIT = env.float("PAPER_LOOKUP_MAX_WAIT", default=10.0)
# How long an answer is kept, so that asking again never reaches the API (and how
# long "no such paper" is).
PAPER_LOOKUP_CACHE_SECONDS = env.int("PAPER_LOOKUP_CACHE_SECONDS", default=86400)
PAPER_LOOKUP_MISS_SECONDS = env.int("PAPER_LOOKUP_MISS_SECONDS", default=600)
# The version check: ids per arXiv request, requests per beat run, and how often
# one paper is checked.
ARXIV_BATCH_SIZE = env.int("ARXIV_BATCH_SIZE", default=100)
ARXIV_CHECK_BATCHES = env.int("ARXIV_CHECK_BATCHES", default=5)
ARXIV_RECHECK_DAYS = env.int("ARXIV_RECHECK_DAYS", default=7)

# --- Analytics (issues/analytics) ---------------------------------------------------
# Where the pixel and the click redirect append their hits: a Redis URL (one RPUSH
# per hit), or "file" for an append-only file under QUIRE_VAR_DIR/analytics. By
# default the cache's or REDIS_URL's Redis when there is one, else the file.
_redis_default = next(
    (
        env.str(name)
        for name in ("CACHE_URL", "REDIS_URL")
        if env.str(name, default="").startswith(("redis://", "rediss://"))
    ),
    "file",
)
ANALYTICS_BUFFER_URL = env.str("ANALYTICS_BUFFER_URL", default=_redis_default)
# The file buffer's folder (when ANALYTICS_BUFFER_URL is "file").
ANALYTICS_BUFFER_DIR = Path(
    env.str("ANALYTICS_BUFFER_DIR", default=str(VAR_DIR / "analytics"))
)
# A click this soon after the message left is a link scanner's, not a reader's.
ANALYTICS_MACHINE_CLICK_SECONDS = env.int("ANALYTICS_MACHINE_CLICK_SECONDS", default=10)
# Every link of a message followed within this many seconds: a scanner.
ANALYTICS_ALL_LINKS_SECONDS = env.int("ANALYTICS_ALL_LINKS_SECONDS", default=5)

# --- Stripe (paid tiers) ----------------------------------------------------------
# Paid subscriptions are on when all three keys are set (dashboard.stripe.com ->
# Developers -> API keys, and the signing secret of the webhook endpoint that points
# at SITE_URL/stripe/webhook/). STRIPE_API_BASE points the stripe library at another
# address of Stripe's API (the tests' local server); leave it unset in production.
STRIPE_SECRET_KEY = env.str("STRIPE_SECRET_KEY", default="")
STRIPE_PUBLISHABLE_KEY = env.str("STRIPE_PUBLISHABLE_KEY", default="")
STRIPE_WEBHOOK_SECRET = env.str("STRIPE_WEBHOOK_SECRET", default="")
STRIPE_API_BASE = env.str("STRIPE_API_BASE", default="")
# Days a member whose payment failed keeps paid access while Stripe retries.
BILLING_GRACE_PERIOD_DAYS = env.int("BILLING_GRACE_PERIOD_DAYS", default=7)

# --- The admin's theme --------------------------------------------------------------
# django-unfold (https://unfoldadmin.com/docs/configuration/settings/). Its Alpine.js
# is replaced by Alpine's CSP build and its inline styles by files (templates/unfold/,
# static/css/admin-theme.css), so the admin runs under the same policy as the site.
# The index is the author's dashboard (issues/dashboard/).
UNFOLD = {
    "SITE_TITLE": "Quire",
    "SITE_HEADER": "Quire",
    "SITE_SYMBOL": "edit_note",
    "SHOW_HISTORY": True,
    # Quire's own pages in Django's admin markup, in the theme's look.
    "STYLES": ["newsletter.adminsite.admin_pages_stylesheet"],
    "DASHBOARD_CALLBACK": "issues.dashboard.views.dashboard_callback",
    "SIDEBAR": {
        "show_search": False,
        "show_all_applications": True,
    },
    "ACCOUNT": {
        "navigation": [
            {
                "title": "Two-factor authentication",
                "link": "newsletter.adminsite.two_factor_link",
            },
        ],
    },
}

# --- Content ---------------------------------------------------------------------
# One Markdown renderer for the editor's preview, the web, feeds and email.
MARKDOWNX_MARKDOWNIFY_FUNCTION = "issues.rendering.markdownify"
MARKDOWNX_SERVER_CALL_LATENCY = 400  # ms of typing pause before the preview updates
# Largest image an author may upload into an issue (bytes).
QUIRE_UPLOAD_MAX_BYTES = env.int("QUIRE_UPLOAD_MAX_BYTES", default=5 * 1024 * 1024)
MARKDOWNX_UPLOAD_MAX_SIZE = QUIRE_UPLOAD_MAX_BYTES
# Largest image, in pixels (width x height), an author may upload (the editor and
# the cover image). Pillow is told the same (Image.MAX_IMAGE_PIXELS, set in
# IssuesConfig.ready), so a small file that claims 30000x30000 pixels (a
# "decompression bomb") is refused from its header, never decoded. 50 million
# pixels take in a 48-megapixel photo (8000x6000).
QUIRE_IMAGE_MAX_PIXELS = env.int("QUIRE_IMAGE_MAX_PIXELS", default=50_000_000)
# Limits on what an author writes in Markdown (issue bodies, paper summaries),
# checked on save and again before any parser sees the text: a body over one is
# refused with a message naming the line, and never reaches the Markdown parser,
# the sanitizer or the email's CSS inliner (native code that crashes on text
# nested thousands deep). A long research issue (20,000 words, a top-100 table)
# is far below each; see "Limits" in README.md.
# Characters in one body: about a 500-page book.
QUIRE_BODY_MAX_CHARS = env.int("QUIRE_BODY_MAX_CHARS", default=1_000_000)
# Levels of quotes, lists, emphasis and HTML elements inside each other. The
# Markdown parser nests at most 100 levels, so values above 45 gain nothing.
QUIRE_BODY_MAX_DEPTH = env.int("QUIRE_BODY_MAX_DEPTH", default=40)
# Rows (header included) and cells of one table, Markdown or HTML.
QUIRE_TABLE_MAX_ROWS = env.int("QUIRE_TABLE_MAX_ROWS", default=1_000)
QUIRE_TABLE_MAX_CELLS = env.int("QUIRE_TABLE_MAX_CELLS", default=10_000)
# Math ($…$, $$…$$): characters in one formula, levels of braces inside each
# other, and formulas in one body (or each side of its paywall break). A formula
# over one shows as its source, so hostile input never reaches the MathML
# converter or the email's image renderer whole.
QUIRE_MATH_MAX_CHARS = env.int("QUIRE_MATH_MAX_CHARS", default=2_000)
QUIRE_MATH_MAX_DEPTH = env.int("QUIRE_MATH_MAX_DEPTH", default=20)
QUIRE_MATH_MAX_FORMULAS = env.int("QUIRE_MATH_MAX_FORMULAS", default=1_000)
# Form data in one request: room for the longest body with most characters
# escaped in the POST (Django's default, 2.5 MB, would refuse it first, unexplained).
DATA_UPLOAD_MAX_MEMORY_SIZE = 3 * QUIRE_BODY_MAX_CHARS + 1024 * 1024
# Seconds a server process keeps a reader page rendered for anonymous readers
# (issues/pagecache.py; changes show at once, see the next setting; 0 turns it off).
QUIRE_PAGE_CACHE_SECONDS = env.int("QUIRE_PAGE_CACHE_SECONDS", default=120)
# How long a server process serves cached pages before it reads the content
# version again (other server processes see a change within this time).
QUIRE_PAGE_RECHECK_SECONDS = env.float("QUIRE_PAGE_RECHECK_SECONDS", default=2)
# Bytes of cached pages one server process keeps at most (least recently used go).
QUIRE_PAGE_CACHE_MAX_BYTES = env.int(
    "QUIRE_PAGE_CACHE_MAX_BYTES", default=64 * 1024 * 1024
)
# Seconds a search's results page is kept per query (and content version).
QUIRE_SEARCH_CACHE_SECONDS = env.int("QUIRE_SEARCH_CACHE_SECONDS", default=30)
# What anonymous pages tell a CDN or nginx in front (Cache-Control s-maxage and
# stale-while-revalidate; see "Behind a CDN or nginx" in README.md). A shared
# cache may show a change this much later than Quire does.
QUIRE_CDN_SECONDS = env.int("QUIRE_CDN_SECONDS", default=10)
QUIRE_CDN_STALE_SECONDS = env.int("QUIRE_CDN_STALE_SECONDS", default=30)

# A form sent without a valid token gets its form back with one (forms on cached
# pages carry no token until static/js/forms.js fetches it; see issues/shared_pages.py).
CSRF_FAILURE_VIEW = "subscribers.views.csrf_failure"

# --- Security (DEBUG off) ----------------------------------------------------------
# https://docs.djangoproject.com/en/5.2/howto/deployment/checklist/
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
if SITE_URL.startswith("https://") and SITE_URL not in CSRF_TRUSTED_ORIGINS:
    CSRF_TRUSTED_ORIGINS.append(SITE_URL)
if not DEBUG:
    # TLS is expected to end at a proxy in front of gunicorn.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=60 * 60 * 24 * 30)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool(
        "SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False
    )
    SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
    # /healthz is polled over plain HTTP by load balancers and compose.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SECURE_CONTENT_TYPE_NOSNIFF = True
# https://django-csp.readthedocs.io/ : scripts and stylesheets only from Quire's own
# static files (no inline code anywhere, the admin included), images also from any
# https address (issue bodies may show them), nothing may frame a page, and forms go
# to Quire, which may redirect them to Stripe. Emails are not pages and keep their
# inline styles; the email preview and uploads send stricter policies of their own.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "style-src-attr": ["'unsafe-hashes'", *_csp.style_attribute_hashes()],
        "img-src": ["'self'", "data:", "https:"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'", *_csp.STRIPE_FORM_TARGETS],
    }
}
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
}
