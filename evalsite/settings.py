"""The one settings module of evalsite, driven by environment variables (see README, "Configuration").

Defaults give a working development site: SQLite under var/, Redis on localhost, media under var/media.
"""
import os
from pathlib import Path

import dj_database_url

from evalsite.env import env_bool, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("EVALSITE_VAR_DIR", str(BASE_DIR / "var")))

DEBUG = env_bool("DEBUG", True)

_DEV_SECRET = "dev-only-insecure-secret-key-do-not-use-in-production"
SECRET_KEY = env_str("SECRET_KEY", _DEV_SECRET if DEBUG else "")
if not SECRET_KEY:
    raise RuntimeError("SECRET_KEY must be set when DEBUG is off.")

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"] if DEBUG else [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_rq",
    "segmentation",
    "ratings",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

if not DEBUG:
    # Production serves collected static files itself (runserver does it in development).
    MIDDLEWARE.insert(1, "whitenoise.middleware.WhiteNoiseMiddleware")

ROOT_URLCONF = "evalsite.urls"
WSGI_APPLICATION = "evalsite.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "evalsite" / "templates"],
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

# --- Database: DATABASE_URL, default SQLite under var/ -------------------------------------------
DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'evalsite.sqlite3'}"),
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 0),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL and a busy timeout let the web server and a worker write the same SQLite file.
    # IMMEDIATE transactions take the write lock at BEGIN, so two workers wait their turn instead of one
    # failing with "database is locked" when both upgrade a read to a write (measured in bench/scale_workers.py).
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 30, "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
         "transaction_mode": "IMMEDIATE"}
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Files ---------------------------------------------------------------------------------------
MEDIA_ROOT = env_str("MEDIA_ROOT", str(VAR_DIR / "media"))
MEDIA_URL = "/media/"
STATIC_URL = "/static/"
STATIC_ROOT = env_str("STATIC_ROOT", str(VAR_DIR / "static"))
STATICFILES_DIRS = [BASE_DIR / "evalsite" / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    # Compressed, cache-busting static files served by whitenoise (no separate static server needed).
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage" if not DEBUG
                    else "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# Media on S3-compatible storage (AWS, MinIO, Ceph...) instead of the filesystem: EVALSITE_MEDIA_STORAGE=s3.
# Raters never see storage URLs: the site reads the bytes and serves them itself.
EVALSITE_MEDIA_STORAGE = env_str("EVALSITE_MEDIA_STORAGE", "filesystem")
if EVALSITE_MEDIA_STORAGE == "s3":
    STORAGES["default"] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": env_str("EVALSITE_S3_BUCKET"),
            "endpoint_url": env_str("EVALSITE_S3_ENDPOINT_URL") or None,
            "access_key": env_str("EVALSITE_S3_ACCESS_KEY") or None,
            "secret_key": env_str("EVALSITE_S3_SECRET_KEY") or None,
            "region_name": env_str("EVALSITE_S3_REGION") or None,
            "default_acl": "private",
            "querystring_auth": True,
            "file_overwrite": False,
        },
    }
elif EVALSITE_MEDIA_STORAGE != "filesystem":
    raise ValueError(f"EVALSITE_MEDIA_STORAGE={EVALSITE_MEDIA_STORAGE!r}: expected 'filesystem' or 's3'")
# Imports refuse files and images larger than these (decompression bombs, runaway uploads).
EVALSITE_MAX_FILE_BYTES = env_int("EVALSITE_MAX_FILE_BYTES", 200 * 1024 * 1024)
EVALSITE_MAX_IMAGE_PIXELS = env_int("EVALSITE_MAX_IMAGE_PIXELS", 4096 * 4096)

# --- Background jobs: django-rq on Redis -------------------------------------------------------
REDIS_URL = env_str("REDIS_URL", "redis://127.0.0.1:6379/0")
RQ_QUEUES = {
    # Short jobs: imports, exports.
    "default": {"URL": REDIS_URL, "DEFAULT_TIMEOUT": 3600},
    # Long jobs: model training (hours on CPU).
    "training": {"URL": REDIS_URL, "DEFAULT_TIMEOUT": 7 * 24 * 3600},
    # Chunks of mask generation and measurement runs: many independent jobs shared by any number of workers.
    "generation": {"URL": REDIS_URL, "DEFAULT_TIMEOUT": 6 * 3600},
}

# --- Science defaults ----------------------------------------------------------------------------
# Flat LambdaCDM used for pixel -> kpc conversions (Walmsley & Spindler 2023 used these values).
EVALSITE_COSMOLOGY = {"H0": float(env_str("EVALSITE_H0", "67.8")), "Om0": float(env_str("EVALSITE_OM0", "0.308"))}
# Download sources for users with internet (fetch_gz3d, fetch_cutouts); empty = the documented defaults.
EVALSITE_GZ3D_BASE_URL = env_str("EVALSITE_GZ3D_BASE_URL", "")
EVALSITE_CUTOUT_URL = env_str("EVALSITE_CUTOUT_URL", "")
# The site's address as raters reach it: invitation links are this + /rate/join/<token>/.
EVALSITE_BASE_URL = env_str("EVALSITE_BASE_URL", "http://127.0.0.1:8000")
# Optional local file of pretrained encoder weights (no downloads happen from this site).
EVALSITE_ENCODER_WEIGHTS = env_str("EVALSITE_ENCODER_WEIGHTS", "")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

# --- Auth, i18n ----------------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Log-in finds the account by the normalised username (NFKC + case folding; evalsite/accounts.py). Django's
# own backend stays listed so sessions signed in through it stay valid; it only matches exact names.
AUTHENTICATION_BACKENDS = ["evalsite.accounts.NormalisedUsernameBackend", "django.contrib.auth.backends.ModelBackend"]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "ratings:home"
LOGOUT_REDIRECT_URL = "login"
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Production hardening (HTTPS) --------------------------------------------------------------
# Behind a TLS-terminating proxy set EVALSITE_HTTPS=true: secure cookies, HSTS and the HTTPS redirect.
EVALSITE_HTTPS = env_bool("EVALSITE_HTTPS", False)
if EVALSITE_HTTPS:
    SECURE_SSL_REDIRECT = env_bool("EVALSITE_SSL_REDIRECT", True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env_int("EVALSITE_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("EVALSITE_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = env_bool("EVALSITE_HSTS_PRELOAD", True)
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

# --- Login rate limit (evalsite/ratelimit.py) ----------------------------------------------------
# Failed log-ins are counted in the database (not Redis: log-in must not depend on the job queues).
# The table is made by `manage.py createcachetable` (or by the first log-in if missing).
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    "ratelimit": {"BACKEND": "django.core.cache.backends.db.DatabaseCache", "LOCATION": "evalsite_ratelimit_cache"},
}
EVALSITE_LOGIN_RATELIMIT_CACHE = "ratelimit"
EVALSITE_LOGIN_MAX_FAILURES_PER_USER = env_int("EVALSITE_LOGIN_MAX_FAILURES_PER_USER", 5)
EVALSITE_LOGIN_MAX_FAILURES_PER_IP = env_int("EVALSITE_LOGIN_MAX_FAILURES_PER_IP", 20)
EVALSITE_LOGIN_WINDOW_SECONDS = env_int("EVALSITE_LOGIN_WINDOW_SECONDS", 900)
EVALSITE_TRUSTED_PROXY_COUNT = env_int("EVALSITE_TRUSTED_PROXY_COUNT", 0)
