# One image for the Compose stack's code server, webserver and daemon (docker-compose.yml picks the command).
# Base pinned to a patch release; bump it deliberately.
FROM python:3.11.14-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DAGSTER_HOME=/opt/dagster/home

# Fixed, unprivileged uid/gid, so file ownership on volumes is predictable.
RUN groupadd --system --gid 10001 dagster \
 && useradd --system --uid 10001 --gid dagster --home-dir /opt/dagster/home --no-create-home \
        --shell /usr/sbin/nologin dagster

# Dependencies first, from pyproject.toml alone: this layer stays cached while only the code changes.
COPY pyproject.toml /tmp/src/
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('/tmp/src/pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
 && pip install -r /tmp/requirements.txt \
 && rm /tmp/requirements.txt

# Then the package itself (`pip install .`, without re-resolving the dependencies installed above).
# Built from /tmp/src and the source removed, so the container imports the installed package exactly as
# packaged (a file missing from package-data fails here, not only in production).
COPY logins_pipeline /tmp/src/logins_pipeline
RUN pip install --no-deps /tmp/src \
 && pip check \
 && rm -rf /tmp/src

# DAGSTER_HOME must be writable by the app user (Dagster keeps small state files there, and storage/ is a
# shared volume in Compose for compute logs); dagster.yaml itself stays owned by root, read-only to the app.
RUN mkdir -p /opt/dagster/home/storage /opt/dagster/ecs /opt/dagster/app \
 && chown dagster:dagster /opt/dagster/home /opt/dagster/home/storage /opt/dagster/ecs /opt/dagster/app
COPY logins_pipeline/dagster.yaml /opt/dagster/home/dagster.yaml
# The instance on ECS (DAGSTER_HOME=/opt/dagster/ecs, set by deploy/cloudformation/dagster-ecs.yaml).
COPY deploy/ecs/dagster.yaml /opt/dagster/ecs/dagster.yaml
# Amazon RDS's CA bundle, so that production connects with sslmode=verify-full (docs/deploy.md).
ADD https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem /etc/ssl/certs/rds-global-bundle.pem
RUN chmod 0644 /etc/ssl/certs/rds-global-bundle.pem
COPY docker/workspace.docker.yaml /opt/dagster/workspace.docker.yaml

WORKDIR /opt/dagster/app
USER 10001:10001

# 4000: code server (gRPC, never published by Compose); 3000: webserver.
EXPOSE 4000 3000

CMD ["dagster", "code-server", "start", "-h", "0.0.0.0", "-p", "4000", "-m", "logins_pipeline.definitions"]
