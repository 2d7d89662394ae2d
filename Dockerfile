# syntax=docker/dockerfile:1
# tenantauth API image: granian (or gunicorn, TENANTAUTH_SERVER=gunicorn) serving the Flask app
# on :8000 as a non-root user.
#   docker build -t tenantauth .
#   docker run --rm -p 8000:8000 -e TENANTAUTH_DATABASE_URL=... -e TENANTAUTH_REDIS_URL=... \
#     -e TENANTAUTH_MASTER_KEY=... -e TENANTAUTH_ADMIN_TOKEN=... tenantauth
# Run `tenantauth migrate` (same image, same env) before starting a new version.

ARG PYTHON_IMAGE=python:3.11-slim

# ---- build: install the package and its dependencies into a self-contained venv
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src/ src/
COPY migrations/ migrations/
# granian (the default server) and gunicorn (TENANTAUTH_SERVER=gunicorn) are both dependencies.
RUN /opt/venv/bin/pip install . \
 && /opt/venv/bin/python -c "import tenantauth.cli, granian, gunicorn"

# ---- runtime: the venv plus the root gunicorn.conf.py, nothing else
FROM ${PYTHON_IMAGE}
# XDG_RUNTIME_DIR: gunicorn (>= 25) puts its control socket there instead of $HOME/.gunicorn,
# and /tmp stays writable under a read-only root filesystem (an emptyDir in k8s).
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    XDG_RUNTIME_DIR=/tmp
RUN groupadd --system --gid 10001 tenantauth \
 && useradd --system --uid 10001 --gid tenantauth --home-dir /app --no-create-home \
      --shell /usr/sbin/nologin tenantauth
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY --chown=root:root gunicorn.conf.py ./
# Numeric so that Kubernetes' runAsNonRoot can verify it.
USER 10001:10001
# 8000: the API; 9464: Prometheus /metrics (TENANTAUTH_METRICS_PORT), never routed by an ingress.
EXPOSE 8000 9464
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]
# One worker per CPU the container may use (its CPU limit, from the cgroup quota), or
# WEB_CONCURRENCY; each runs TENANTAUTH_BLOCKING_THREADS threads (granian, default 4) or
# TENANTAUTH_THREADS (gunicorn, default 4).
CMD ["tenantauth", "serve", "--host", "0.0.0.0", "--port", "8000"]
