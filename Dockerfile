# syntax=docker/dockerfile:1
# The engine's image: one image for every role (`order-engine api|worker|projector|market|migrate`).
# Build: docker build -t order-engine .   Run: see docker-compose.yml (README, "Running as a fleet").

# --- build: resolve the locked dependencies with uv, then install the project (editable: the API serves
# web/ from beside its package, so the source stays where the environment points).
FROM python:3.11-slim-bookworm AS build
COPY --from=ghcr.io/astral-sh/uv:0.13.8 /uv /bin/uv
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv
WORKDIR /app
# Dependencies first, in a layer of their own: a change to the source does not reinstall them.
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --locked --no-default-groups --no-install-project
COPY domain ./domain
COPY commands ./commands
COPY eventstore ./eventstore
COPY projections ./projections
COPY venues ./venues
COPY market ./market
COPY workers ./workers
COPY api ./api
COPY engine ./engine
COPY migrations ./migrations
COPY web ./web
COPY docs ./docs
RUN uv sync --locked --no-default-groups

# --- final: the interpreter, the environment and the source; no uv, no compiler, no dev tools.
FROM python:3.11-slim-bookworm
RUN groupadd --system --gid 10001 engine \
    && useradd --system --uid 10001 --gid engine --home-dir /app --no-create-home engine
COPY --from=build --chown=root:root /app /app
WORKDIR /app
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    HOST=0.0.0.0 \
    PORT=3000 \
    HEARTBEAT_FILE=/tmp/order-engine.heartbeat
USER 10001:10001
EXPOSE 3000 3001
# The API's health (200, or 503 while a dependency is down or the process drains). The compose file gives
# the market, workers and projectors checks of their own (MARKET_PORT's /health; the heartbeat file).
HEALTHCHECK --interval=5s --timeout=4s --start-period=20s --retries=3 \
    CMD ["python", "-m", "engine.healthcheck", "http://127.0.0.1:3000/health"]
# SIGTERM starts the graceful shutdown (README, "Stopping gracefully"); exec form, so the engine is PID 1's
# signal target.
STOPSIGNAL SIGTERM
ENTRYPOINT ["order-engine"]
CMD ["api"]
