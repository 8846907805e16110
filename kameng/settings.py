"""Kameng settings, read from the environment.

Two modes:

* **embedded** (the default, ``DEBUG`` unset or true): SQLite, Celery tasks executed in-process,
  periodic jobs run by a thread of the web process (``kameng/embedded.py``), the sandbox payment
  provider, e-mail kept in an outbox folder (``var/outbox/``, read at ``/dev/outbox/``). Nothing to
  configure, nothing to run besides ``manage.py runserver``. Values may also come from a ``.env`` file next to manage.py
  (``make run`` writes one with freshly generated development keys).
* **production** (``DEBUG=false``): every secret must come from the environment; a missing or
  malformed variable stops start-up with a message that names it (see ``kameng.env``).

Every variable is listed, with its default and meaning, in README.md ("Configuration").
"""

from pathlib import Path

from celery.schedules import crontab
from django.utils.translation import gettext_lazy as _

from kameng.env import Config

BASE_DIR = Path(__file__).resolve().parent.parent
cfg = Config(BASE_DIR / ".env")

DEBUG = cfg.bool("DEBUG", default=True)
PRODUCTION = not DEBUG
# Settings that production must set explicitly; the embedded run gets the default.
required = cfg.required_when(PRODUCTION)

SECRET_KEY = required.str(
    "SECRET_KEY",
    embedded_default="django-insecure-embedded-only-key-never-use-in-production-0123456789",
    min_length=50,
)
ALLOWED_HOSTS = required.list("ALLOWED_HOSTS", embedded_default=["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = cfg.list("CSRF_TRUSTED_ORIGINS", default=[])
# Without SITE_URL, the address `make run` serves on (HOST, PORT), so e-mail links point at it.
SITE_URL = cfg.site_url("SITE_URL", served_name="KAMENG_SERVE_ADDRESS", default="http://127.0.0.1:8000")
if PRODUCTION and cfg._raw("SITE_URL") is None:
    # Without it every e-mail link and payment return address would point at 127.0.0.1.
    cfg.problems.append(
        "SITE_URL is required when DEBUG is off: the shop's public address, e.g. https://shop.example.com"
    )

INSTALLED_APPS = [
    "kameng.admin_site.AdminConfig",  # Django's admin with a limited sign-in and scoped "view on site"
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django.contrib.postgres",  # trigram lookups of the product search (catalog/search.py)
    "allauth",
    "allauth.account",
    "phonenumber_field",
    "auditlog",  # the change history of promotions (kameng/audit.py); before kameng, whose admin replaces its
    "kameng",
    "accounts",
    "catalog",
    "orders",
    "payments",
    "marketing",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "kameng.middleware.LanguageMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "kameng.audit.AuditMiddleware",  # who made a change (the audit trail's actor), after authentication
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "accounts.middleware.RateLimitedMiddleware",  # RateLimited from allauth flows → 429 page
    "marketing.middleware.InviteMiddleware",  # ?invite=CODE: the first-touch referral cookie
]

if PRODUCTION:
    # WhiteNoise serves the collected, compressed, hashed static files from gunicorn. The embedded
    # run keeps Django's own static view (runserver), which needs no collectstatic.
    MIDDLEWARE.insert(1, "whitenoise.middleware.WhiteNoiseMiddleware")

ROOT_URLCONF = "kameng.urls"
WSGI_APPLICATION = "kameng.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "kameng.context_processors.site",
                "catalog.context_processors.shop",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------
DATABASES = {"default": required.db_url("DATABASE_URL", embedded_default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
DATABASES["default"]["CONN_MAX_AGE"] = cfg.int("DB_CONN_MAX_AGE", default=60 if PRODUCTION else 0)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DATABASES["default"]["ATOMIC_REQUESTS"] = False
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # The embedded run writes from runserver's request threads, its periodic-jobs thread
    # (kameng/embedded.py) and background import checks (catalog.tasks.enqueue_long). IMMEDIATE
    # transactions take the write lock at BEGIN, so writers queue for up to `timeout` seconds
    # instead of failing with "database is locked" when a transaction that has read tries to
    # write; WAL lets readers (the import progress poll) go on meanwhile.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"transaction_mode": "IMMEDIATE", "timeout": 20, "init_command": "PRAGMA journal_mode=WAL"}
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: Celery broker, result backend and cache --------------------------------------------
REDIS_URL = required.redis_url("REDIS_URL", embedded_default="")

if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "kameng.cache.RedisCache",  # Django's, reusing its client (kameng/cache.py)
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": cfg.str("CACHE_KEY_PREFIX", default="kameng"),
            "OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 2},
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_RESULT_BACKEND = REDIS_URL or "cache+memory://"
# No broker configured: run every task in-process, right after the transaction that queued it.
CELERY_TASK_ALWAYS_EAGER = not REDIS_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Keep worker database connections between tasks (Celery's Django fix-up otherwise closes them
# around every task: a new PostgreSQL backend per task). CONN_MAX_AGE and health checks still
# retire old or broken ones: kameng/celery.py runs close_old_connections around each task.
CELERY_DB_REUSE_MAX = 1_000_000
CELERY_TASK_TIME_LIMIT = 15 * 60
CELERY_TASK_SOFT_TIME_LIMIT = 14 * 60
CELERY_RESULT_EXPIRES = 24 * 3600
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_TIMEZONE = "Asia/Shanghai"
# Periodic jobs. Each entry expires before its next run so a backlog never piles up; every task
# here is safe to run late, twice, or from two beat hosts (see kameng/tasks.py).
CELERY_BEAT_SCHEDULE = {
    # Orders: unpaid orders past their deadline give their codes back (allocation does not wait
    # for this: it treats expired reservations as free), and paid orders whose delivery task was
    # lost (broker down, worker killed) are queued again.
    "orders.expire_overdue_orders": {
        "task": "orders.tasks.expire_overdue_orders",
        "schedule": 60.0,
        "options": {"expires": 55},
    },
    "payments.refund_stranded_orders": {
        "task": "payments.tasks.refund_stranded_orders",
        "schedule": 300.0,
        "options": {"expires": 290},
    },
    "orders.redeliver_stuck_orders": {
        "task": "orders.tasks.redeliver_stuck_orders",
        "schedule": 60.0,
        "options": {"expires": 55},
    },
    # Annual membership: renewal reminders MEMBERSHIP_REMINDER_DAYS before expiry (orders/membership.py).
    "orders.send_membership_reminders": {
        "task": "orders.tasks.send_membership_reminders",
        "schedule": crontab(hour=10, minute=20),
        "options": {"expires": 3 * 3600},
    },
    "accounts.clear_expired_sessions": {
        "task": "accounts.tasks.clear_expired_sessions",
        "schedule": crontab(hour=4, minute=17),
        "options": {"expires": 3600},
    },
    # Points earned in year Y expire at the end of Y + LoyaltySettings.expire_after_years; daily,
    # idempotent (a run finds nothing more to expire once it has), so a missed night catches up.
    "accounts.expire_points": {
        "task": "accounts.tasks.expire_points",
        "schedule": crontab(hour=0, minute=20),
        "options": {"expires": 6 * 3600},
    },
    # Low-stock alerts: re-evaluate every SKU (catches reservations that expired without a release)
    # and re-queue alert e-mails lost on the way; then the merchants' daily digest.
    # "Bought together": co-purchase counts of the last 90 days' paid orders (catalog/related.py).
    "orders.compute_related_products": {
        "task": "orders.tasks.compute_related_products",
        "schedule": crontab(hour=3, minute=40),
        "options": {"expires": 6 * 3600},
    },
    "catalog.sweep_low_stock": {
        "task": "catalog.tasks.sweep_low_stock",
        "schedule": crontab(minute="*/10"),
        "options": {"expires": 9 * 60},
    },
    # Imports whose parse or commit task was lost (broker restart, killed worker) are queued again.
    "catalog.sweep_stalled_imports": {
        "task": "catalog.tasks.sweep_stalled_imports",
        "schedule": 300.0,
        "options": {"expires": 290},
    },
    # Favourites: price drops and restocks no signal reported; notices whose e-mail was lost.
    "catalog.sweep_favourites": {
        "task": "catalog.tasks.sweep_favourites",
        "schedule": crontab(minute="*/15"),
        "options": {"expires": 14 * 60},
    },
    # The spending leaderboard is recomputed ahead of its cache's expiry, so pages never wait for it.
    # Referral commission (marketing/referrals.py): booked once its order is split, available in the
    # beneficiary's wallet after the programme's hold.
    "marketing.mature_commissions": {
        "task": "marketing.tasks.mature_commissions",
        "schedule": 600.0,
        "options": {"expires": 590},
    },
    # Commission withdrawals approved whose payout task was lost (broker down, worker killed).
    "marketing.requeue_stuck_withdrawals": {
        "task": "marketing.tasks.requeue_stuck_withdrawals",
        "schedule": 900.0,
        "options": {"expires": 890},
    },
    # Win-back (marketing/wallet.py): idle buyers get their programme's coupon, at most once per period.
    "marketing.win_back": {
        "task": "marketing.tasks.win_back",
        "schedule": crontab(hour=10, minute=40),
        "options": {"expires": 3 * 3600},
    },
    "orders.refresh_leaderboard": {
        "task": "orders.tasks.refresh_leaderboard",
        "schedule": 300.0,
        "options": {"expires": 290},
    },
    # Home page (catalog/home.py): sales per product over the last 30 days for the best sellers.
    "catalog.roll_up_sales": {
        "task": "catalog.tasks.roll_up_sales",
        "schedule": 600.0,
        "options": {"expires": 590},
    },
    "catalog.send_low_stock_digest": {
        "task": "catalog.tasks.send_low_stock_digest",
        "schedule": crontab(hour=9, minute=5),
        "options": {"expires": 3 * 3600},
    },
    # Payments (payments/reconcile.py): ask the gateway about open attempts whose notification may
    # be lost, close attempts of expired orders at the gateway (after a last query), refund orders
    # paid twice that slipped through, and drive refunds that are not final to a final state.
    # Split settlement (payments/settlement.py): delivered orders are split between the platform
    # and their merchants; due splits are paid out through the provider, with back-off.
    "payments.create_due_settlements": {
        "task": "payments.tasks.create_due_settlements",
        "schedule": 300.0,
        "options": {"expires": 290},
    },
    "payments.execute_due_settlements": {
        "task": "payments.tasks.execute_due_settlements",
        "schedule": 600.0,
        "options": {"expires": 590},
    },
    "payments.reconcile_splits": {
        "task": "payments.tasks.reconcile_splits",
        "schedule": 600.0,
        "options": {"expires": 590},
    },
    "payments.query_open_payments": {
        "task": "payments.tasks.query_open_payments",
        "schedule": 60.0,
        "options": {"expires": 55},
    },
    "payments.close_expired_attempts": {
        "task": "payments.tasks.close_expired_attempts",
        "schedule": 60.0,
        "options": {"expires": 55},
    },
    "payments.scan_duplicate_payments": {
        "task": "payments.tasks.scan_duplicate_payments",
        "schedule": crontab(minute="*/10"),
        "options": {"expires": 9 * 60},
    },
    "payments.reconcile_refunds": {
        "task": "payments.tasks.reconcile_refunds",
        "schedule": 60.0,
        "options": {"expires": 55},
    },
}

# The embedded run has no beat process: a thread of the web process runs this schedule, each job
# eagerly (kameng/embedded.py, started from kameng/wsgi.py). Only without a broker.
EMBEDDED_SCHEDULER = CELERY_TASK_ALWAYS_EAGER and cfg.bool("EMBEDDED_SCHEDULER", default=True)

# --- Auth (django-allauth) ----------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_REDIRECT_URL = "/"
ACCOUNT_LOGOUT_REDIRECT_URL = "/"
# Sign in with an e-mail or a mobile number and a password, or with a mobile number and a code sent
# by SMS (allauth's login by code; the adapter's phone methods keep the number on the User, E.164).
# A number given at sign-up is verified by SMS before the sign-up finishes.
ACCOUNT_LOGIN_METHODS = {"email", "phone"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "phone", "password1*", "password2*"]
ACCOUNT_LOGIN_BY_CODE_ENABLED = True
ACCOUNT_LOGIN_BY_CODE_TIMEOUT = 5 * 60  # a sign-in code lives 5 minutes and is used once
ACCOUNT_LOGIN_BY_CODE_SUPPORTS_RESEND = True
ACCOUNT_PHONE_VERIFICATION_TIMEOUT = 10 * 60
ACCOUNT_PHONE_VERIFICATION_SUPPORTS_RESEND = True
ACCOUNT_PHONE_VERIFICATION_CODE_FORMAT = {"numeric": True, "length": 6, "dashed": False}  # what SMS codes look like
ACCOUNT_FORMS = {
    "login": "accounts.forms.ShopLoginForm",
    "request_login_code": "accounts.forms.RequestPhoneLoginCodeForm",
    "confirm_login_code": "accounts.forms.ConfirmSmsLoginCodeForm",
    "verify_phone": "accounts.forms.VerifyPhoneCodeForm",
}
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_UNIQUE_EMAIL = True
# Production: nobody uses an account (or claims guest orders) through an address they haven't shown
# they own. The embedded run keeps it optional so a demo sign-up works without opening the outbox.
ACCOUNT_EMAIL_VERIFICATION = cfg.str("ACCOUNT_EMAIL_VERIFICATION", default="mandatory" if PRODUCTION else "optional")
# The link opened in the browser that signed up finishes the sign-up signed in (allauth resumes only the
# login pending in that session; the same link opened elsewhere just verifies).
ACCOUNT_LOGIN_ON_EMAIL_CONFIRMATION = True
ACCOUNT_EMAIL_SUBJECT_PREFIX = None  # None: "[<shop name>] ", set by accounts/adapter.py (not the host)
ACCOUNT_LOGIN_ON_PASSWORD_RESET = True
ACCOUNT_SESSION_REMEMBER = None
ACCOUNT_ADAPTER = "accounts.adapter.AccountAdapter"  # client IP from kameng/clientip.py
ACCOUNT_DEFAULT_HTTP_PROTOCOL = "https" if PRODUCTION else "http"
# allauth's own cache-backed limits (login failures, sign-ups, password-reset mails).
ACCOUNT_RATE_LIMITS = {
    "login_failed": "10/m/ip,5/5m/key",
    "signup": "20/m/ip",
    "reset_password": "20/m/ip,5/m/key",
    # Phone: a sign-in code may be asked for once a minute per number (key) and 10 times a minute
    # per IP; a verification SMS once a minute per number, 10 an hour per IP; a number change once
    # a minute per user. Every code SMS also passes SMS_CODE_RATE_LIMITS (accounts/adapter.py).
    "request_login_code": "10/m/ip,1/m/key",
    "verify_phone": "10/h/ip,1/m/key",
    "change_phone": "1/m/user",
}
# Every SMS carrying a code, whichever flow sent it (sign-in, verification, resend): per number
# (/key) and per client IP. Aliyun's own default caps are 1/min, 5/h and 10/day per number.
SMS_CODE_RATE_LIMITS = cfg.failure_rates("SMS_CODE_RATE_LIMITS", default="1/m/key,5/h/key,10/d/key,20/h/ip")
# Back-office sign-in (kameng/admin_auth.py): failed attempts per client IP and per account (the
# e-mail typed), counted in the cache; a spent limit refuses even the right password until it passes.
ADMIN_LOGIN_RATE_LIMITS = cfg.failure_rates("ADMIN_LOGIN_RATE_LIMITS", default="10/m/ip,30/h/ip,5/15m/key")

# --- E-mail -------------------------------------------------------------------------------------
# Production needs EMAIL_URL pointing at a mail server (kameng/env.py refuses a missing one and the
# console/file/memory/dummy backends: delivery e-mails carry card codes). The embedded run keeps
# every message as one .eml file in EMAIL_FILE_PATH, listed at /dev/outbox/ (kameng/outbox.py),
# so nothing prints message bodies, codes included, to the console.
EMAIL_CONFIG = required.email_url(
    "EMAIL_URL",
    embedded_default={"EMAIL_BACKEND": "kameng.outbox.OutboxBackend", "EMAIL_FILE_PATH": ""},
)
vars().update(EMAIL_CONFIG)
if EMAIL_CONFIG["EMAIL_BACKEND"] == "kameng.outbox.OutboxBackend":
    EMAIL_FILE_PATH = cfg.str("EMAIL_OUTBOX_DIR", default=str(BASE_DIR / "var" / "outbox"))
DEFAULT_FROM_EMAIL = cfg.str("DEFAULT_FROM_EMAIL", default="Kameng 卡盟 <noreply@kameng.local>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
OPERATOR_EMAILS = cfg.list("OPERATOR_EMAILS", default=[])

# --- Internationalisation -----------------------------------------------------------------------
LANGUAGE_CODE = "zh-hans"
LANGUAGES = [("zh-hans", "简体中文"), ("en", "English")]
LOCALE_PATHS = [BASE_DIR / "kameng" / "locale"]
TIME_ZONE = "Asia/Shanghai"  # alipay-sdk-python stamps requests with naive local time
USE_I18N = True
USE_TZ = True
LANGUAGE_COOKIE_AGE = 365 * 24 * 3600

# --- Static and media ---------------------------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = Path(cfg.str("STATIC_ROOT", default=str(BASE_DIR / "staticfiles")))
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_URL = "/media/"
MEDIA_ROOT = Path(cfg.str("MEDIA_ROOT", default=str(BASE_DIR / "media")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if PRODUCTION
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}

# Campaign share images (marketing/campaigns.py) are drawn with the first of these fonts that exists
# (a CJK font: the Dockerfile installs fonts-wqy-microhei); Pillow's built-in font otherwise.
CAMPAIGN_SHARE_FONTS = cfg.list(
    "CAMPAIGN_SHARE_FONTS",
    default=[
        "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
        "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
        "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    ],
)

# --- Security -----------------------------------------------------------------------------------
# Sessions (carts, guests' order access, sign-ins) live in Redis when REDIS_URL is set. cached_db
# also wrote every changed session to PostgreSQL (~4 writes an order); Redis is already what the
# broker and job locks depend on, and runs with appendonly persistence (docker-compose.yml).
# Losing Redis data signs people out and empties carts; a guest gets an order back with its number
# and query secret (/orders/lookup/). The embedded run (process-local cache) keeps cached_db, so a
# runserver reload keeps its sessions. SESSION_ENGINE in the environment overrides both.
SESSION_ENGINE = cfg.str(
    "SESSION_ENGINE",
    default="django.contrib.sessions.backends.cache" if REDIS_URL else "django.contrib.sessions.backends.cached_db",
)
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = PRODUCTION
CSRF_COOKIE_SECURE = PRODUCTION
SECURE_SSL_REDIRECT = cfg.bool("SECURE_SSL_REDIRECT", default=PRODUCTION)
# Load balancers and container health checks speak plain HTTP to /healthz.
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SECURE_HSTS_SECONDS = cfg.int("SECURE_HSTS_SECONDS", default=31536000 if PRODUCTION else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = cfg.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=PRODUCTION)
SECURE_HSTS_PRELOAD = cfg.bool("SECURE_HSTS_PRELOAD", default=PRODUCTION)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# The client's address (kameng/clientip.py): the forwarded-for header is believed only as far as the hops that
# appended it are these proxies (default: loopback and private networks, where a reverse proxy in
# front of gunicorn or a container usually sits), or, with TRUSTED_PROXY_COUNT, exactly that many hops.
TRUSTED_PROXIES = cfg.networks(
    "TRUSTED_PROXIES",
    default=["127.0.0.0/8", "::1/128", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"],
)
TRUSTED_PROXY_COUNT = cfg.int("TRUSTED_PROXY_COUNT", default=0)
if TRUSTED_PROXY_COUNT < 0:
    cfg.problems.append("TRUSTED_PROXY_COUNT must be 0 (use TRUSTED_PROXIES) or the number of proxies")
# django-ratelimit's key="ip" asks the same helper.
RATELIMIT_IP_META_KEY = "kameng.clientip.ratelimit_key"
if cfg.bool("BEHIND_PROXY", default=PRODUCTION):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    USE_X_FORWARDED_HOST = True

# --- Logging ------------------------------------------------------------------------------------
LOG_LEVEL = cfg.str("LOG_LEVEL", default="INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "INFO"},  # SQL params may hold secrets: never DEBUG
    },
}
if not REDIS_URL:
    # The embedded run executes tasks in-process, the periodic ones every minute: a line per task
    # ("Task … succeeded") would bury what a developer looks for, and the in-memory broker makes
    # kombu warn about a missing host name on every command. Failures still log (WARNING, ERROR).
    LOGGING["loggers"]["celery.app.trace"] = {"level": "WARNING"}
    LOGGING["loggers"]["kombu.connection"] = {"level": "ERROR"}

# --- Shop ---------------------------------------------------------------------------------------
SHOP_NAME = _("Kameng")
PLATFORM_COMMISSION_RATE = cfg.decimal_rate("PLATFORM_COMMISSION_RATE", default="0.10")
# Newest key first; older keys only decrypt (see catalog rotate_card_keys).
CARD_CODE_KEYS = required.fernet_keys("CARD_CODE_KEYS", embedded_default=[])
ORDER_RESERVATION_MINUTES = cfg.int("ORDER_RESERVATION_MINUTES", default=15)
# Stock hoarding: at most this many unpaid orders at once per user, per e-mail and per IP.
MAX_UNPAID_ORDERS = cfg.int("MAX_UNPAID_ORDERS", default=3)
# Order POSTs (placing an order) per client IP; shoppers behind one carrier-grade NAT or office
# address share it, so a shop with many such buyers raises it (the unpaid-order limit still holds).
CHECKOUT_RATE_LIMIT = cfg.request_rate("CHECKOUT_RATE_LIMIT", default="30/m")
# Low-stock checks after sales are coalesced per SKU: at most one queued per SKU, run this many
# seconds after the first change (catalog.stock.on_stock_changed). 0: at once, one per change.
LOW_STOCK_CHECK_DELAY = cfg.int("LOW_STOCK_CHECK_DELAY", default=5)
# Favourites' price-drop and back-in-stock checks are coalesced the same way, per SKU, run this many
# seconds after the first change (catalog.favourites.on_catalog_changed). 0: at once, one per change.
FAVOURITE_CHECK_DELAY = cfg.int("FAVOURITE_CHECK_DELAY", default=30)
# The spending leaderboard (orders/leaderboard.py): how long a computed board is served from the
# cache (the beat task recomputes it more often), and how many buyers it lists.
LEADERBOARD_CACHE_SECONDS = cfg.int("LEADERBOARD_CACHE_SECONDS", default=900)
LEADERBOARD_SIZE = cfg.int("LEADERBOARD_SIZE", default=50)
SETTLEMENT_HOLD_DAYS = cfg.int("SETTLEMENT_HOLD_DAYS", default=0)
# The share of a WeChat Pay trade the platform's mchid may split out (WeChat's default cap is 30%;
# merchants' shares need it raised). Splits above it are refused before calling the gateway.
WECHATPAY_PROFIT_SHARING_MAX_RATIO = cfg.str("WECHATPAY_PROFIT_SHARING_MAX_RATIO", default="0.30")
# Wallet top-ups paid through Alipay / WeChat Pay: the smallest and largest amount, in fen.
WALLET_TOP_UP_MIN_FEN = cfg.int("WALLET_TOP_UP_MIN_FEN", default=100)
WALLET_TOP_UP_MAX_FEN = cfg.int("WALLET_TOP_UP_MAX_FEN", default=500_000)
# Annual membership: e-mail a renewal reminder this many days before a membership expires.
MEMBERSHIP_REMINDER_DAYS = cfg.int("MEMBERSHIP_REMINDER_DAYS", default=7)
# The sandbox payment gateway (a local page with Pay / Fail buttons) exists only in DEBUG.
PAYMENT_SANDBOX_ENABLED = DEBUG
PAYMENT_NOTIFY_BASE_URL = cfg.str("PAYMENT_NOTIFY_BASE_URL", default=SITE_URL)
# Notification endpoints take unauthenticated POSTs and store each one before verifying it
# (payments/notifications.py). A genuine Alipay notification is a form of ~2-3 KB and a WeChat Pay
# one a JSON of ~1-2 KB, so 64 KB leaves room for any field the gateways add and refuses the rest
# (413) before a byte is stored. Per client IP, refused with 429 and not stored; the gateways post
# from many addresses and retry a refused notification, and lost payments are queried anyway.
# Guest order look-up (orders/views.py): failed attempts, counted in the cache, per client IP, per
# number (or e-mail) from one IP, and per number from anywhere (a distributed guesser; it can lock
# the buyer out too, but only after 50 guesses an hour at one order). allauth's rate syntax.
ORDER_LOOKUP_RATE_LIMITS = {"ip": "10/m/ip,30/h/ip", "number_and_ip": "5/15m/key", "number": "50/h/key"}
PAYMENT_NOTIFY_MAX_BYTES = 64 * 1024
PAYMENT_NOTIFY_RATE_LIMIT = cfg.request_rate("PAYMENT_NOTIFY_RATE_LIMIT", default="120/m")

# --- Payment providers --------------------------------------------------------------------------
# A provider whose settings are absent is not offered. Paths name key files that the provider reads
# when it needs them (never here); `manage.py check` reports unreadable files and wrong key formats
# (payments/checks.py).
# Alipay (alipay-sdk-python, public-key mode, RSA2): the app's private key (PKCS#1; PKCS#8 is
# converted on load) and Alipay's public key, PEM or the bare base64 the console shows.
ALIPAY_APP_ID = cfg.str("ALIPAY_APP_ID")
ALIPAY_APP_PRIVATE_KEY_PATH = cfg.str("ALIPAY_APP_PRIVATE_KEY_PATH")
ALIPAY_PUBLIC_KEY_PATH = cfg.str("ALIPAY_PUBLIC_KEY_PATH")
ALIPAY_GATEWAY_URL = cfg.str("ALIPAY_GATEWAY_URL", default="https://openapi.alipay.com/gateway.do")
# WeChat Pay (wechatpayv3, API v3, Native QR): the merchant's API key and certificate serial, the
# APIv3 key, and the platform's public key with its id (or, certificate mode, the platform
# certificate at WECHATPAY_PUBLIC_KEY_PATH, its serial taken from the certificate).
WECHATPAY_MCHID = cfg.str("WECHATPAY_MCHID")
WECHATPAY_APPID = cfg.str("WECHATPAY_APPID")
WECHATPAY_PRIVATE_KEY_PATH = cfg.str("WECHATPAY_PRIVATE_KEY_PATH")
WECHATPAY_CERT_SERIAL_NO = cfg.str("WECHATPAY_CERT_SERIAL_NO")
WECHATPAY_APIV3_KEY = cfg.str("WECHATPAY_APIV3_KEY")
WECHATPAY_PUBLIC_KEY_PATH = cfg.str("WECHATPAY_PUBLIC_KEY_PATH")
WECHATPAY_PUBLIC_KEY_ID = cfg.str("WECHATPAY_PUBLIC_KEY_ID")

# --- SMS (accounts/sms.py) ------------------------------------------------------------------------
# Phone sign-in codes and delivery notices. The embedded run keeps messages as files in
# SMS_OUTBOX_DIR (the console backend); production sends through Aliyun SMS and refuses the console
# backend (it would log sign-in codes). The templates are the operator's, approved in the Aliyun
# console: verification takes ${code}, delivery ${order} and ${url}, delivery_codes also ${codes}.
SMS_BACKEND = cfg.str("SMS_BACKEND", default="aliyun" if PRODUCTION else "console")
if SMS_BACKEND not in ("aliyun", "console"):
    cfg.problems.append(f"SMS_BACKEND={SMS_BACKEND!r} is not one of aliyun, console")
elif PRODUCTION and SMS_BACKEND == "console":
    cfg.problems.append("SMS_BACKEND=console is refused when DEBUG is off: it would log sign-in codes; use aliyun")
SMS_OUTBOX_DIR = cfg.str("SMS_OUTBOX_DIR", default=str(BASE_DIR / "var" / "sms"))
ALIYUN_SMS_ACCESS_KEY_ID = cfg.str("ALIYUN_SMS_ACCESS_KEY_ID")
ALIYUN_SMS_ACCESS_KEY_SECRET = cfg.str("ALIYUN_SMS_ACCESS_KEY_SECRET")
ALIYUN_SMS_SIGN_NAME = cfg.str("ALIYUN_SMS_SIGN_NAME")
ALIYUN_SMS_ENDPOINT = cfg.str("ALIYUN_SMS_ENDPOINT", default="dysmsapi.aliyuncs.com")
ALIYUN_SMS_TEMPLATES = {
    "verification": cfg.str("ALIYUN_SMS_TEMPLATE_VERIFICATION"),
    "delivery": cfg.str("ALIYUN_SMS_TEMPLATE_DELIVERY"),
    # Optional: without it no SMS ever carries card codes.
    "delivery_codes": cfg.str("ALIYUN_SMS_TEMPLATE_DELIVERY_CODES"),
    # Optional: without it coupons granted (win-back) are told by e-mail only.
    "coupon": cfg.str("ALIYUN_SMS_TEMPLATE_COUPON"),
}
if SMS_BACKEND == "aliyun":
    for _name, _value in (
        ("ALIYUN_SMS_ACCESS_KEY_ID", ALIYUN_SMS_ACCESS_KEY_ID),
        ("ALIYUN_SMS_ACCESS_KEY_SECRET", ALIYUN_SMS_ACCESS_KEY_SECRET),
        ("ALIYUN_SMS_SIGN_NAME", ALIYUN_SMS_SIGN_NAME),
        ("ALIYUN_SMS_TEMPLATE_VERIFICATION", ALIYUN_SMS_TEMPLATES["verification"]),
        ("ALIYUN_SMS_TEMPLATE_DELIVERY", ALIYUN_SMS_TEMPLATES["delivery"]),
    ):
        if not _value:
            cfg.problems.append(f"{_name} is required when SMS_BACKEND is aliyun (the default when DEBUG is off)")
PHONENUMBER_DEFAULT_REGION = cfg.str("PHONENUMBER_DEFAULT_REGION", default="CN")
PHONENUMBER_DB_FORMAT = "E164"

# Card-code imports (catalog/imports/): uploads are kept Fernet-encrypted in this private
# directory (never under MEDIA_ROOT) until the batch is committed or cancelled; web and worker
# processes must share it.
IMPORT_UPLOAD_DIR = Path(cfg.str("IMPORT_UPLOAD_DIR", default=str(BASE_DIR / "var" / "imports")))
IMPORT_MAX_UPLOAD_MB = cfg.int("IMPORT_MAX_UPLOAD_MB", default=50)
IMPORT_MAX_ROWS = cfg.int("IMPORT_MAX_ROWS", default=1_000_000)

# The audit trail (django-auditlog, kameng/audit.py): every create, change and delete of these models is
# recorded with who, when and each field's before and after. Tracking one more model is one line here.
# Counters the checkout moves (a coupon's uses, a special's sold units) are not admin changes: left out.
AUDITLOG_INCLUDE_TRACKING_MODELS = (
    {"model": "marketing.Coupon", "exclude_fields": ["used_count", "claimed_count"]},
    {"model": "marketing.FlashSpecial", "exclude_fields": ["sold", "redemptions"]},
    "marketing.SpendTierPromotion",
    "marketing.SpendTier",
    "marketing.FirstOrderOffer",
    "marketing.QuantityTier",
    "marketing.ReferralProgram",
    {"model": "marketing.Campaign", "exclude_fields": ["share_image", "share_key", "items"]},  # redrawn by a task
    "marketing.CampaignItem",
    "marketing.WinBackProgramme",
    "marketing.LevelCommissionRate",
)

cfg.finish()
