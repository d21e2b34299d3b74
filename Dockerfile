# syntax=docker/dockerfile:1
# The bridge as a container image (deploy/helm/webhook-kafka-bridge and deploy/k8s/deployment.yaml run it).
#
#   docker build -t webhook-kafka-bridge:0.1.0 .
#   docker run --rm -p 8000:8000 -v "$PWD/bridge.yaml:/etc/bridge/bridge.yaml:ro" webhook-kafka-bridge:0.1.0
#
# NOT BUILT IN CI HERE: the project's machines have no Docker engine. CI lints this file with
# hadolint (tests/unit/test_dockerfile.py), nothing more, so build it once wherever Docker exists
# before relying on it.

# The base image, pinned by digest so a rebuild gets the same bytes: the multi-arch index of
# python:3.11-slim as pushed on 2026-08-16 (Debian trixie). Docker Hub cannot be reached from the
# project's machines, so this digest was not resolved here: it is the one public BuildKit logs show
# for that tag. Before a release, check it with `docker buildx imagetools inspect python:3.11-slim`
# and bump it as a reviewed change.
ARG PYTHON_IMAGE=python:3.11-slim@sha256:9c900dea9e8fb7e16277c179b555cc72d29a352dbc33cff48ad5a0412fd5bfc7

# ---- build: a virtualenv with the package and its pinned dependencies -------------------------
FROM ${PYTHON_IMAGE} AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN python -m venv /opt/bridge

WORKDIR /src
COPY pyproject.toml README.md constraints.txt ./
COPY bridge/ bridge/
COPY schemas/ schemas/

RUN /opt/bridge/bin/pip install -c constraints.txt .

# The wheel carries schemas/ as bridge/schemas (pyproject's package-dir); load them once, from /
# so the installed package is imported rather than /src/bridge, so the build fails if they go missing.
WORKDIR /
RUN /opt/bridge/bin/python -c "from bridge.avro import load_schemas; load_schemas()"

# ---- runtime: the same base, the virtualenv, a non-root user ------------------------------------
FROM ${PYTHON_IMAGE}

# Set at build time: docker build --build-arg VERSION=0.1.0 --build-arg REVISION=$(git rev-parse HEAD) ...
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.title="webhook-kafka-bridge" \
      org.opencontainers.image.description="Verify provider webhooks and publish them, Avro-encoded, to one Kafka topic per event type." \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.base.name="docker.io/library/python:3.11-slim" \
      org.opencontainers.image.base.digest="sha256:9c900dea9e8fb7e16277c179b555cc72d29a352dbc33cff48ad5a0412fd5bfc7"

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
# 8000: POST /webhooks/{source} (server.port). 9090: /healthz, /readyz and /metrics when the
# configuration sets server.management_port: 9090, as the Helm chart does.
EXPOSE 8000 9090

# Exec form: `bridge` is PID 1 and gets SIGTERM itself, so uvicorn drains in-flight deliveries and
# the producer flushes (server.shutdown_timeout_seconds) before the process exits.
ENTRYPOINT ["bridge"]
CMD ["serve", "--host", "0.0.0.0"]
