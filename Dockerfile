# syntax=docker/dockerfile:1
# dynatrace-webhook image: the admission webhook. The init container it injects runs the Dynatrace Operator
# image (`--init-image`), not this one.
#
#   docker build -t dynatrace-webhook:0.1.0 .
#
# Runtime dependencies come from requirements.lock, every file checked against its sha256 (--require-hashes),
# wheels only (no compiler in any stage). Pin the base image by digest in your registry mirror if your policy
# asks for it: --build-arg PYTHON_IMAGE=python:3.11-slim@sha256:...
ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore
WORKDIR /src
RUN python -m venv /opt/venv
# Dependencies first: this layer is reused until the lock changes.
COPY requirements.lock ./
RUN /opt/venv/bin/pip install --require-hashes --no-deps --only-binary=:all: -r requirements.lock
# Then the project itself, as a wheel, without touching the locked dependencies.
COPY . ./
RUN /opt/venv/bin/pip wheel --no-deps --wheel-dir /tmp/wheels . \
    && /opt/venv/bin/pip install --no-deps /tmp/wheels/dynatrace_webhook-*.whl \
    && /opt/venv/bin/dynatrace-webhook --version

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="dynatrace-webhook" \
      org.opencontainers.image.description="Admission webhook that decides whether a Kubernetes pod gets the Dynatrace OneAgent" \
      org.opencontainers.image.licenses="Apache-2.0"
# Read-only root filesystem: no bytecode written at run time (it was compiled at install time), unbuffered
# logs, HOME on the /tmp emptyDir the chart mounts.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp
COPY --from=build /opt/venv /opt/venv
# Numeric user and group: Kubernetes can verify runAsNonRoot without an /etc/passwd entry.
USER 65532:65532
WORKDIR /tmp
EXPOSE 8443 8080 10080
ENTRYPOINT ["dynatrace-webhook"]
