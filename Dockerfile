# syntax=docker/dockerfile:1
# The bridge as a container image (deploy/k8s/deployment.yaml runs it).
#
#   docker build -t webhook-kafka-bridge:0.1.0 .
#   docker run --rm -p 8000:8000 -v "$PWD/bridge.yaml:/etc/bridge/bridge.yaml:ro" webhook-kafka-bridge:0.1.0
#
# NOT BUILT IN CI HERE: the project's machines have no Docker engine. Nothing checks this file
# automatically, so build it once wherever Docker exists before relying on it.

# ---- build: a virtualenv with the package and its pinned dependencies -------------------------
FROM python:3.11-slim AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN python -m venv /opt/bridge

WORKDIR /src
COPY pyproject.toml README.md constraints.txt ./
COPY bridge/ bridge/
COPY schemas/ schemas/

# The wheel carries schemas/ as bridge/schemas (pyproject's package-dir); load them once, from /
# so the installed package is imported rather than /src/bridge, so the build fails if they go missing.
RUN /opt/bridge/bin/pip install -c constraints.txt . \
    && cd / && /opt/bridge/bin/python -c "from bridge.avro import load_schemas; load_schemas()"

# ---- runtime: the same base, the virtualenv, a non-root user ------------------------------------
FROM python:3.11-slim

# A numeric UID, so Kubernetes' runAsNonRoot can verify it without a runAsUser.
RUN groupadd --system --gid 10001 bridge \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin bridge

COPY --from=build /opt/bridge /opt/bridge

ENV PATH=/opt/bridge/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    BRIDGE_CONFIG=/etc/bridge/bridge.yaml \
    BRIDGE_LOG_FORMAT=json

USER 10001:10001
EXPOSE 8000

# Exec form: `bridge` is PID 1 and gets SIGTERM itself, so uvicorn drains in-flight deliveries and
# the producer flushes (server.shutdown_timeout_seconds) before the process exits.
ENTRYPOINT ["bridge"]
CMD ["serve", "--host", "0.0.0.0"]
