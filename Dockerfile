# One image for the web and the worker processes (the Procfile's commands, via docker/entrypoint.sh).
#   docker build -t intent-distiller .
#   docker run --env-file .env intent-distiller migrate
#   docker run --env-file .env -p 8000:8000 intent-distiller web
#   docker run --env-file .env intent-distiller worker
# Not built on the project's own machines (they have no container engine): see docs/deploy.md.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    VAR_DIR=/var/lib/distiller \
    STATIC_ROOT=/app/static \
    PORT=8000

RUN groupadd --system --gid 10001 distiller \
    && useradd --system --uid 10001 --gid distiller --home-dir /app --shell /usr/sbin/nologin distiller

WORKDIR /app
RUN python -m venv "$VIRTUAL_ENV"
COPY requirements.txt ./
RUN pip install -r requirements.txt

COPY --chown=distiller:distiller . .
# The static files with hashed names, baked into the image (the web command's collectstatic then
# finds them up to date). The throwaway key exists only for this build step.
RUN DEBUG=0 SECRET_KEY=build-only-not-a-secret-key-0123456789abcdef python manage.py collectstatic --noinput --verbosity 0 \
    && mkdir -p "$VAR_DIR" && chown -R distiller:distiller "$VAR_DIR" "$STATIC_ROOT"

USER distiller
VOLUME ["/var/lib/distiller"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s \
    CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '8000'), timeout=4)"
ENTRYPOINT ["/app/docker/entrypoint.sh"]
CMD ["web"]
