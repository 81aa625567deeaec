"""gunicorn settings for the Procfile's web process, from the environment.

PORT (honcho and most platforms set it) or WEB_BIND picks the address; WEB_CONCURRENCY (processes)
and WEB_THREADS (threads each) size it. The web never calls an LLM or writes an export (workers
do), so requests are short: a few processes with a few threads serve many reviewers.
"""

import os

bind = os.environ.get("WEB_BIND") or f"0.0.0.0:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
threads = int(os.environ.get("WEB_THREADS", "4"))
worker_class = "gthread"
timeout = int(os.environ.get("WEB_TIMEOUT", "60"))
graceful_timeout = 30
accesslog = "-"
# Django decides https from X-Forwarded-Proto itself (BEHIND_TLS_PROXY); gunicorn passes it on.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
