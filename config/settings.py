"""Settings, all read from the environment (see .env.example for every variable)."""

from pathlib import Path

from config.env import (
    database_config,
    env_bool,
    env_int,
    env_list,
    env_str,
    env_url,
    secret_key,
)

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("VAR_DIR", str(BASE_DIR / "var")))

DEBUG = env_bool("DEBUG", False)
SECRET_KEY = secret_key("SECRET_KEY", debug=DEBUG, local_file=VAR_DIR / "secret_key")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "config.apps.DistillerAdminConfig",  # django.contrib.admin with the product's site
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_rq",
    # datasets before import_export: its `import` management command is the project's (the first app wins).
    "datasets",
    "import_export",
    "distiller",
    "labeling",
    "evaluation",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "config.csp.ContentSecurityPolicyMiddleware",
    "config.middleware.RejectNulBytesMiddleware",
    "config.middleware.DatabaseUnavailableMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

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
            ],
        },
    },
]

DATABASES = {"default": database_config("DATABASE_URL", VAR_DIR / "db.sqlite3")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Redis: unset means the embedded Redis that `manage.py demo` starts on a unix socket.
EMBEDDED_REDIS_SOCKET = VAR_DIR / "redis.sock"
REDIS_URL = env_url("REDIS_URL", schemes=("redis", "rediss", "unix")) or f"unix://{EMBEDDED_REDIS_SOCKET}"
RQ_JOB_TIMEOUT = env_int("RQ_JOB_TIMEOUT", 1800, minimum=10)
RQ_QUEUES = {
    name: {"URL": REDIS_URL, "DEFAULT_TIMEOUT": RQ_JOB_TIMEOUT}
    for name in ("default", "distill", "exports", "evaluation")
}
# Tests and local scripts may run jobs in-process; production always uses workers.
# django-rq's own admin entry lets any staff user in; distiller/admin.py registers one behind the
# product's roles instead (config/queue_dashboard.py).
RQ_SHOW_ADMIN_LINK = False
# Shared by every web process (the captures throttle counts across all of them); Redis, like the queues.
CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL,
                      "KEY_PREFIX": "cache"}}
# Workers that ride a Redis restart through and list themselves again after it (config/workers.py).
RQ = {"WORKER_CLASS": "config.workers.RestartTolerantWorker"}
RQ_ASYNC = env_bool("RQ_ASYNC", True)
if not RQ_ASYNC:
    for queue in RQ_QUEUES.values():
        queue["ASYNC"] = False

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

FORMS_URLFIELD_ASSUME_HTTPS = True
STATIC_URL = "static/"
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(VAR_DIR / "static")))
# With DEBUG off, static files get content-hashed names that WhiteNoise serves with a cache
# lifetime of years; `collectstatic` must run first (the Procfile's web command does).
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage" if DEBUG
                    else "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
MEDIA_URL = "media/"
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(VAR_DIR / "media")))
# Exports and evaluations' model files (config/storage.py): without S3_BUCKET they are stored in
# EXPORT_ROOT, which every web process and worker must then share; with it, in an S3-compatible
# bucket, and EXPORT_ROOT is only each machine's own scratch folder where files are written before
# they are uploaded (and where a web process keeps a copy of the evaluation models it used).
EXPORT_ROOT = Path(env_str("EXPORT_ROOT", str(VAR_DIR / "exports")))
S3_BUCKET = env_str("S3_BUCKET", "")
if S3_BUCKET:
    STORAGES["exports"] = {"BACKEND": "config.storage.S3ExportStorage", "OPTIONS": {
        "bucket_name": S3_BUCKET,
        # MinIO, Ceph, ...: their URL; unset for AWS S3.
        "endpoint_url": env_url("S3_ENDPOINT_URL", schemes=("http", "https")) or None,
        "region_name": env_str("S3_REGION", "") or None,
        # Unset: boto3's own chain (AWS_ACCESS_KEY_ID..., an instance or pod role).
        "access_key": env_str("S3_ACCESS_KEY_ID", "") or None,
        "secret_key": env_str("S3_SECRET_ACCESS_KEY", "") or None,
        "location": env_str("S3_PREFIX", "").strip("/"),  # a folder in the bucket, if it is shared
        "addressing_style": env_str("S3_ADDRESSING_STYLE", "") or None,  # "path" for some MinIO set-ups
        "default_acl": None,  # private objects: downloads go through the app's authorised views
        "querystring_auth": True,
        "file_overwrite": True,
    }}
else:
    STORAGES["exports"] = {"BACKEND": "config.storage.LocalExportStorage"}

# How long the review queue reserves a question for the reviewer who got it; an abandoned
# reservation frees itself after this.
REVIEW_LEASE_SECONDS = env_int("REVIEW_LEASE_SECONDS", 300, minimum=10)

# A topic deletion (a job, datasets/lifecycle.py) rests after each batch of 1,000 questions this
# percentage of the time the batch took, so the reviews of other topics keep their speed; 0 deletes
# flat out (a database on machines of its own).
DELETION_REST_PERCENT = env_int("DELETION_REST_PERCENT", 100, minimum=0)

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "login"

# HTTPS (docs/deploy.md, "TLS"). With DEBUG off, plain HTTP is redirected to HTTPS and cookies
# travel over HTTPS only, unless the operator says otherwise (a trusted network without TLS).
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEBUG)
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
# Load balancers probe health over plain HTTP on the private side: no redirect for them.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
# HSTS pins browsers to HTTPS for this long; 0 (the default) sends no header. It is hard to take
# back, so the operator turns it on once HTTPS works (.env.example shows a year).
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
# Behind a TLS-terminating proxy the app sees plain HTTP; the proxy says the original scheme in
# X-Forwarded-Proto. Trusted only when the operator says a proxy that sets (and overwrites) that
# header stands in front: otherwise any client could claim https.
BEHIND_TLS_PROXY = env_bool("BEHIND_TLS_PROXY", False)
if BEHIND_TLS_PROXY:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# config/csp.py sends it on every response. Scripts only from this site (no inline script, no
# eval); inline styles are allowed because the admin, Swagger UI and a few pages set style
# attributes, which cannot run code.
CONTENT_SECURITY_POLICY = env_str("CONTENT_SECURITY_POLICY", "; ".join([
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data:",
    "font-src 'self' data:",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'self'",
    "form-action 'self'",
    "frame-ancestors 'none'",
]))

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "config.authentication.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "config.api.api_exception_handler",
    "DEFAULT_THROTTLE_RATES": {"captures": env_str("CAPTURE_THROTTLE_RATE", "6000/min")},
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Intent Distiller API",
    "DESCRIPTION": "Distil intent-classification datasets from LLMs, review them, export them.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Anonymous users get nothing but the login page: the schema and the docs need a session or a
    # token (the API's own authentication classes, as SERVE_AUTHENTICATION is unset), and a role:
    # a capture client or a user without a role has no business reading the API's shape.
    "SERVE_PERMISSIONS": ["datasets.permissions.IsReviewerOrDatasetAdmin"],
    # Swagger UI from the drf-spectacular-sidecar package's static files: the docs work offline.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {
        "QuestionStatusEnum": "datasets.models.Question.Status",
        "ExportStatusEnum": "datasets.models.Export.Status",
        "ExportFormatEnum": "datasets.models.Export.Format",
        # The import formats, taken by the import and the file health endpoints.
        "ImportFormatEnum": "datasets.formats.readers.READERS",
    },
}

# LLM providers. Keys live only in the environment; the database stores the *name*
# of the variable that holds each provider's key.
LLM_PROVIDER_KEY_VARIABLES = ("DEEPSEEK_API_KEY", "OPENROUTER_API_KEY", "OPENAI_API_KEY", "LLM_API_KEY")
LLM_BASE_URL = env_url("LLM_BASE_URL", schemes=("http", "https"))
LLM_MODEL = env_str("LLM_MODEL", "")
LLM_DEFAULT_PROVIDER = env_str("LLM_DEFAULT_PROVIDER", "")

# Distillation engine (distiller/). Provider limits (concurrency, requests per minute) live on
# each LLMProvider row and are enforced across all workers through Redis.
DISTILL_WORKER_CONCURRENCY = env_int("DISTILL_WORKER_CONCURRENCY", 16, minimum=1)  # LLM calls in flight per worker
DISTILL_UNIT_LEASE_SECONDS = env_int("DISTILL_UNIT_LEASE_SECONDS", 60, minimum=2)  # a dead worker's unit frees after this
DISTILL_MAX_RETRIES = env_int("DISTILL_MAX_RETRIES", 6, minimum=0)  # per call, on 429/5xx/timeouts
DISTILL_INVALID_RETRIES = env_int("DISTILL_INVALID_RETRIES", 2, minimum=0)  # per call, on malformed output
DISTILL_RETRY_BASE_MS = env_int("DISTILL_RETRY_BASE_MS", 1000, minimum=1)  # first backoff step
# A Redis or PostgreSQL outage shorter than this is ridden through (retried); a longer one stalls the run.
DISTILL_OUTAGE_SECONDS = env_int("DISTILL_OUTAGE_SECONDS", 60, minimum=1)
DISTILL_JOB_TIMEOUT = env_int("DISTILL_JOB_TIMEOUT", 24 * 3600, minimum=60)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        # httpx logs request URLs only; never headers, so keys stay out of logs.
        "httpx": {"level": "WARNING"},
        "httpx2": {"level": "WARNING"},  # the openai client's HTTP library logs every request at INFO
        "openai": {"level": "WARNING"},
    },
}
