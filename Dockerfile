# syntax=docker/dockerfile:1
# The datarch operator image:  docker build -t datarch:0.1.0 .
#
# Stage 1 builds the datarch wheel and a wheel of every dependency; stage 2 installs
# them with no package index, so the runtime holds exactly what was built and no build
# tool. The steps live in docker/install.sh, which tests/integration/test_dockerfile.py
# runs too (no Docker engine runs where the tests do), so this recipe cannot rot
# unnoticed. The image runs as a numeric non-root user on a read-only root filesystem.

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY operator/ operator/
COPY docker/install.sh docker/install.sh
RUN sh docker/install.sh wheels /wheels

FROM python:3.11-slim
LABEL org.opencontainers.image.title="datarch" \
      org.opencontainers.image.description="Keeps a platform's documented data architecture honest." \
      org.opencontainers.image.licenses="Apache-2.0"
# The root filesystem is read-only and /tmp the one writable place (the chart mounts an
# emptyDir there), hence HOME=/tmp. No .pyc is written at run time: pip compiled them
# while installing.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
# Bind mounts: the wheels and the script never become a layer of this image.
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    --mount=type=bind,from=build,source=/src/docker/install.sh,target=/install.sh \
    sh /install.sh install /wheels
# Numeric, so that the kubelet can check runAsNonRoot without reading /etc/passwd.
USER 65532:65532
WORKDIR /tmp
EXPOSE 8080 8081
ENTRYPOINT ["datarch", "operator"]
