# syntax=docker/dockerfile:1
# One image per workspace package, built from the repo root:
#   docker build --build-arg SERVICE=callstream-router -t callstream-router .
# SERVICE names a workspace package (services/*/pyproject.toml, or callstream-admin for the operator's CLI).
# The image holds only that package, its workspace dependencies and their locked dependencies.

ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS build
ARG SERVICE
RUN test -n "${SERVICE}" || { echo "build arg SERVICE is required, e.g. callstream-router" >&2; exit 1; }
# uv from PyPI, at the version the Makefile uses, so builds do not depend on another registry.
RUN pip install --no-cache-dir "uv==0.13.9"
# Use the image's Python (never download one), compile bytecode once at build time, and copy files out of
# the cache (a cache mount cannot be hard-linked into the final layer).
ENV UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON=python3.11 \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PROJECT_ENVIRONMENT=/app/.venv
WORKDIR /src
COPY pyproject.toml uv.lock ./
COPY libs/ libs/
COPY services/ services/
COPY tools/admin/ tools/admin/
# --frozen: exactly the lock, never re-resolved. --no-editable: workspace packages are installed into the
# venv as wheels, so the runtime stage needs the venv alone, not the sources.
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable --package "${SERVICE}"

FROM ${PYTHON_IMAGE} AS runtime
ARG SERVICE
LABEL org.opencontainers.image.title="${SERVICE}" \
      org.opencontainers.image.source="callstream"
RUN groupadd --system --gid 10001 callstream \
    && useradd --system --uid 10001 --gid callstream --home-dir /var/lib/callstream --create-home \
       --shell /usr/sbin/nologin callstream
COPY --from=build /app/.venv /app/.venv
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
# The working directory is the one place the user can write: faust keeps its table state (RocksDB) under
# the current directory unless configured otherwise.
WORKDIR /var/lib/callstream
# Numeric, so that orchestrators can verify runAsNonRoot.
USER 10001:10001
# Default command: the package's module (callstream-router -> python -m callstream_router). compose.yaml
# spells the command out per service; the topics job runs python -m callstream_admin topics.
# (Not CALLSTREAM_*: that prefix is the settings namespace.)
ENV SERVICE_PACKAGE=${SERVICE}
CMD ["sh", "-c", "exec python -m \"$(echo \"$SERVICE_PACKAGE\" | tr - _)\""]
