# The one production image: Compose's code server, webserver and daemon (docker-compose.yml picks the
# command), the ECS tasks and the Kubernetes user-code and run pods (dagster-k8s is in it). `make image`
# builds it and prints its size and build time; README.md, "The image".
#
# The base is a parameter. The default is the public python:3.11.14-slim-bookworm, pinned by the digest of its
# multi-architecture index (bump tag and digest together, deliberately). The image test passes a Python 3.11
# base made from Debian's packages instead (scripts/image.py), on machines that reach no container registry.
ARG BASE_IMAGE=docker.io/library/python:3.11.14-slim-bookworm@sha256:65a93d69fa75478d554f4ad27c85c1e69fa184956261b4301ebaf6dbb0a3543d
# checkov:skip=CKV_DOCKER_7: the tag and digest are in BASE_IMAGE's default above, which checkov does not expand
FROM ${BASE_IMAGE}

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    DAGSTER_HOME=/opt/dagster/home

SHELL ["/bin/sh", "-eu", "-c"]

# Fixed, unprivileged uid/gid, so file ownership on volumes is predictable.
RUN groupadd --system --gid 10001 dagster \
 && useradd --system --uid 10001 --gid dagster --home-dir /opt/dagster/home --no-create-home \
        --shell /usr/sbin/nologin dagster

# The dependencies alone, from the hashed lock (`make lock`): pip refuses any file whose hash is not in it,
# and `pip check` any dependency missing from it (--no-deps: Debian's pip 23.0 mishandles extras, such as
# gql[requests], in hash-checking mode).
# This layer stays cached while only the code changes. A venv, since Debian's Python is "externally managed".
COPY requirements.lock /tmp/requirements.lock
RUN python3 -m venv /opt/venv \
 && pip install --no-cache-dir --no-deps --require-hashes -r /tmp/requirements.lock \
 && pip check \
 && rm /tmp/requirements.lock

# Then the package itself, built from /tmp/src with the locked setuptools (no build isolation: nothing
# unhashed comes in) and the source removed, so the container imports the installed package exactly as
# packaged (a file missing from package-data fails here, not only in production).
COPY pyproject.toml README.md /tmp/src/
COPY logins_pipeline /tmp/src/logins_pipeline
RUN pip install --no-cache-dir --no-deps --no-build-isolation /tmp/src \
 && pip check \
 && rm -rf /tmp/src

# DAGSTER_HOME must be writable by the app user (Dagster keeps small state files there, and storage/ is a
# shared volume in Compose for compute logs); dagster.yaml itself stays owned by root, read-only to the app.
RUN mkdir -p /opt/dagster/home/storage /opt/dagster/ecs /opt/dagster/app \
 && chown dagster:dagster /opt/dagster/home /opt/dagster/home/storage /opt/dagster/ecs /opt/dagster/app
COPY logins_pipeline/dagster.yaml /opt/dagster/home/dagster.yaml
# The instance on ECS (DAGSTER_HOME=/opt/dagster/ecs, set by deploy/cloudformation/dagster-ecs.yaml).
COPY deploy/ecs/dagster.yaml /opt/dagster/ecs/dagster.yaml
COPY docker/workspace.docker.yaml /opt/dagster/workspace.docker.yaml
COPY docker/healthcheck.py /opt/dagster/healthcheck.py

# Amazon RDS's CA bundle, for sslmode=verify-full (docs/deploy.md): never fetched by this build. On ECS it is
# baked in here: `make image RDS_CA_BUNDLE=<file> RDS_CA_BUNDLE_SHA256=<sha256>` stages the file in
# docker/rds-ca/, and the build stops unless it has that SHA-256. Without it (Compose, the tests) the image
# has none; on Kubernetes a ConfigMap is mounted at the same path (docs/deploy.md).
ARG RDS_CA_BUNDLE_SHA256=""
COPY docker/rds-ca/ /tmp/rds-ca/
RUN if [ -f /tmp/rds-ca/global-bundle.pem ]; then \
        printf '%s  %s\n' "${RDS_CA_BUNDLE_SHA256}" /tmp/rds-ca/global-bundle.pem > /tmp/rds-ca/SHA256SUMS \
        && sha256sum -c --strict /tmp/rds-ca/SHA256SUMS \
        && install -m 0644 /tmp/rds-ca/global-bundle.pem /etc/ssl/certs/rds-global-bundle.pem; \
    fi \
 && rm -rf /tmp/rds-ca

WORKDIR /opt/dagster/app
USER 10001:10001

# 4000: code server (gRPC, never published by Compose); 3000: webserver.
EXPOSE 4000 3000

# Whichever of the three services the container runs (code server, webserver, daemon): docker/healthcheck.py.
HEALTHCHECK --interval=30s --timeout=20s --start-period=60s --retries=5 CMD ["python", "/opt/dagster/healthcheck.py"]

CMD ["dagster", "api", "grpc", "-h", "0.0.0.0", "-p", "4000", "-m", "logins_pipeline.definitions", "--log-format", "json"]
