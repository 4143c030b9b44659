"""Settings shared by every environment.

Every value that differs between machines comes from the environment through `env`, the one reader.
With no environment at all the product runs on its embedded default: SQLite, Celery tasks run in
the calling process, and the AI client is the offline one.
"""

from datetime import timedelta
from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DJANGO_DEBUG", default=False)
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="")
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1"])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework_simplejwt.token_blacklist",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "guardian",
    "django_celery_beat",
    "providers",
    "accounts",
    "billing",
    "invoicing",
    "auditing",
]

MIDDLEWARE = [
    "config.middleware.RequestContextMiddleware",
    "config.middleware.RefuseNulMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "config.middleware.SessionActorMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

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
                "accounts.web.navigation",
            ],
        },
    },
]

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=0)
# A kept connection is checked before a request uses it: after PostgreSQL restarts, the first request
# reconnects instead of failing on the dead connection.
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Redis when REDIS_URL is set (throttling must be shared by every server process); in-process otherwise.
REDIS_URL = env.str("REDIS_URL", default="")
# An unreachable Redis must fail fast: sign-in waits on it before falling back (accounts.throttles).
REDIS_CACHE_OPTIONS = {"socket_connect_timeout": 1, "socket_timeout": 1}
CACHES = {
    "default": (
        {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "OPTIONS": REDIS_CACHE_OPTIONS,
        }
        if REDIS_URL
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    ),
    # Where the sign-in limits count while the shared cache is unreachable (accounts.throttles).
    "local": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "local"},
}

AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "accounts.permissions.RolePermissionBackend",
]
# django-guardian's own backend would grant an object permission whatever role the user acts in;
# RolePermissionBackend consults guardian itself, only for the roles whose policy allows it.
SILENCED_SYSTEM_CHECKS = ["guardian.W001"]
ANONYMOUS_USER_NAME = None  # no guardian "AnonymousUser" row: anonymous callers get no object permission
GUARDIAN_MONKEY_PATCH_USER = False

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("DJANGO_TIME_ZONE", default="Asia/Karachi")
USE_I18N = True
LANGUAGES = [("en", "English"), ("ur", "اردو")]
# locale_staff holds the staff pages' Urdu; the merge folds it into locale/.
LOCALE_PATHS = [BASE_DIR / "locale", BASE_DIR / "locale_staff"]
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

REST_FRAMEWORK = {
    # Bearer tokens for API clients; the pages' session for the scripts of the pages themselves.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.RoleJWTAuthentication",
        "accounts.authentication.SessionRoleAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["config.parsers.SafeJSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "config.pagination.PagePagination",
    "EXCEPTION_HANDLER": "config.errors.api_exception_handler",
    "DEFAULT_THROTTLE_RATES": {
        "login": env.str("LOGIN_RATE_PER_ADDRESS", default="20/min"),
        "login_email": env.str("LOGIN_RATE_PER_EMAIL", default="5/min"),
        # "Forgot password": each request may send an e-mail, so fewer than sign-in attempts.
        "password_reset": env.str("PASSWORD_RESET_RATE_PER_ADDRESS", default="5/min"),
        "password_reset_email": env.str("PASSWORD_RESET_RATE_PER_EMAIL", default="3/hour"),
    },
    "NUM_PROXIES": env.int("NUM_PROXIES", default=0),
    "COERCE_DECIMAL_TO_STRING": True,
}

SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=env.int("JWT_ACCESS_MINUTES", default=10)),
    # The original system's tokens lived 7 days; here that is the refresh token's life.
    "REFRESH_TOKEN_LIFETIME": timedelta(days=env.int("JWT_REFRESH_DAYS", default=7)),
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    "UPDATE_LAST_LOGIN": False,  # login sends user_logged_in itself, which updates last_login
    "AUTH_HEADER_TYPES": ("Bearer",),
    "USER_ID_CLAIM": "user_id",
}
ROLE_SELECTION_TICKET_TTL = timedelta(minutes=env.int("ROLE_SELECTION_TICKET_MINUTES", default=5))

SPECTACULAR_SETTINGS = {
    "TITLE": "Electricity billing platform API",
    "DESCRIPTION": (
        "Tariffs, connections, meter readings, invoices, payments, adjustments and audit for "
        "electricity distribution companies. Authenticate with `POST /api/auth/login`, then send "
        "`Authorization: Bearer <token>`. Errors share one shape: `detail`, `code`, and `fields` for "
        "field errors."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "RoleEnum": "accounts.roles.Role",
        "ConnectionStatusEnum": "billing.models.ConnectionStatus",
        "CustomerKindEnum": "billing.models.CustomerKind",
        "MessageStatusEnum": "accounts.models.MessageStatus",
        "MessageKindEnum": "accounts.models.MessageKind",
        "BillingRunStatusEnum": "invoicing.models.BillingRunStatus",
        "ReversalKindEnum": "invoicing.models.ReversalKind",
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "config.schema.document_errors",
    ],
}

# E-mail (accounts.messaging): sent by Celery tasks through Django's e-mail framework. The embedded default
# prints each message on the console; production speaks SMTP (config/settings/production.py).
EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = env.str("EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env.str("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)
EMAIL_USE_SSL = env.bool("EMAIL_USE_SSL", default=False)
# Seconds a mail server may take to answer: a message's row stays locked while it is sent.
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=30)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="billing@localhost")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
# Where the links in e-mails (set a password) point: the address people open the product at.
SITE_URL = env.str("SITE_URL", default="http://localhost:8000")
# How long an invitation or a password reset link works (Django's token; once used, it stops at once).
PASSWORD_RESET_TIMEOUT = env.int("PASSWORD_RESET_TIMEOUT_SECONDS", default=3 * 24 * 3600)
# A message still unsent and untouched this long lost its task: the reconciler sends it again. Longer
# than the reconciler's grace for runs: a billing run's e-mails may wait in the queue behind each other.
MESSAGE_RESEND_AFTER_SECONDS = env.int("MESSAGE_RESEND_AFTER_SECONDS", default=3600)

# Celery: a real broker when CELERY_BROKER_URL is set; otherwise tasks run eagerly in the caller.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="")
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_DEFAULT_QUEUE = env.str("CELERY_QUEUE", default="billing")
CELERY_TASK_ACKS_LATE = True  # a task whose worker dies is delivered again; tasks are idempotent
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_SOFT_TIME_LIMIT", default=600)
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TIME_LIMIT", default=660)
CELERY_TASK_IGNORE_RESULT = True  # results live in the database rows the tasks write
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = TIME_ZONE
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# The reconcilers (celery beat, `invoicing.reconcile_billing_runs`, `auditing.reconcile_ai_queries`)
# send again the work whose message was lost: a broker restarted, a worker killed, a send that failed
# after its commit. The period seeds their schedule when it is created (editable in admin later); the
# grace is how long work may sit sent and untouched before it counts as lost: longer than an AI
# question's hard time limit (90 s), so what is merely queued or running is rarely sent twice.
RECONCILE_EVERY_SECONDS = env.int("RECONCILE_EVERY_SECONDS", default=300)
RECONCILE_GRACE_SECONDS = env.int("RECONCILE_GRACE_SECONDS", default=300)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_context": {"()": "config.logging.RequestContextFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s [%(request_id)s] %(name)s: %(message)s"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["request_context"]},
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # WeasyPrint logs every rendering step and fontTools every font subset at INFO: ~100 lines a PDF.
        "weasyprint.progress": {"level": "WARNING"},
        "fontTools": {"level": "WARNING"},
    },
}

# AI queries: Gemini writes the SQL when a key is set; without one the offline assistant answers the
# common questions. The checked SQL runs on PostgreSQL as a role that reads only provider-scoped views.
GEMINI_API_KEY = env.str("GEMINI_API_KEY", default="")
GEMINI_MODEL = env.str("GEMINI_MODEL", default="gemini-2.5-flash")
GEMINI_TIMEOUT = env.float("GEMINI_TIMEOUT", default=30.0)
AI_QUERY_DB_USER = env.str("AI_QUERY_DB_USER", default="billing_ai_reader")
AI_QUERY_DB_PASSWORD = env.str("AI_QUERY_DB_PASSWORD", default="")
AI_QUERY_TIMEOUT_SECONDS = env.float("AI_QUERY_TIMEOUT_SECONDS", default=5)
AI_ANSWER_MAX_BYTES = env.int("AI_ANSWER_MAX_BYTES", default=256 * 1024)  # an answer kept, as JSON
# The key of the audit trail's digests of e-mail, phone and address (HMAC); empty: derived from
# SECRET_KEY. Set it once and keep it: a new key digests the same address differently from then on.
AUDIT_DIGEST_KEY = env.str("AUDIT_DIGEST_KEY", default="")
