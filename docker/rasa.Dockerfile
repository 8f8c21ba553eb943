# Rasa Open Source 3.6 server for Teller's NLU and dialogue (Python 3.10: Rasa 3.6 does
# not support 3.11). Custom actions run in the API (ACTION_ENDPOINT_URL), so this image
# holds Rasa and the trained model only.
# Build from the repository root: docker build -f docker/rasa.Dockerfile .
ARG PYTHON_IMAGE=python:3.10.16-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ARG RASA_VERSION=3.6.21
# The Rasa project (config.yml, domain.yml, data/) inside the repository.
ARG RASA_PROJECT=bot/rasa
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    RASA_TELEMETRY_ENABLED=false \
    PATH=/opt/venv/bin:$PATH
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/venv && pip install "rasa==${RASA_VERSION}"
WORKDIR /app
COPY ${RASA_PROJECT}/ ./
# Train at build time: the image carries its model and starts without training.
RUN rasa train --fixed-model-name teller --out /app/models
# Production endpoints: SQL tracker store (PostgreSQL), Redis lock store, the API as
# action server. Rasa substitutes the ${...} variables from the environment at start-up
# (single quotes keep the shell from expanding them here).
RUN printf '%s\n' \
        'tracker_store:' \
        '  type: SQL' \
        '  dialect: postgresql' \
        '  url: ${DB_HOST}' \
        '  port: ${DB_PORT}' \
        '  db: ${DB_NAME}' \
        '  username: ${DB_USER}' \
        '  password: ${DB_PASSWORD}' \
        'lock_store:' \
        '  type: redis' \
        '  url: ${REDIS_HOST}' \
        '  port: ${REDIS_PORT}' \
        '  password: ${REDIS_PASSWORD}' \
        '  db: 1' \
        'action_endpoint:' \
        '  url: ${ACTION_ENDPOINT_URL}' \
        > /app/endpoints.production.yml \
    && printf 'rest:\n' > /app/credentials.production.yml

FROM ${PYTHON_IMAGE} AS runtime
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    RASA_TELEMETRY_ENABLED=false \
    HOME=/home/rasa
RUN groupadd --system --gid 10002 rasa \
    && useradd --system --uid 10002 --gid rasa --home-dir /home/rasa --create-home rasa
COPY --from=build /opt/venv /opt/venv
COPY --from=build --chown=rasa:rasa /app /app
USER rasa
WORKDIR /app
EXPOSE 5005
HEALTHCHECK --interval=15s --timeout=5s --start-period=90s --retries=5 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:5005/', timeout=4)"]
# Shell form so that the token comes from the environment; `exec` keeps Rasa as PID 1.
CMD exec rasa run --enable-api --port 5005 --model /app/models \
    --endpoints /app/endpoints.production.yml --credentials /app/credentials.production.yml \
    --auth-token "${RASA_AUTH_TOKEN:?set RASA_AUTH_TOKEN}"
