# Teller API (FastAPI + uvicorn), Python 3.11. Rasa and its action server run from
# docker/rasa.Dockerfile; the actions call this API's /v1/internal/* endpoints.
# Build from the repository root: docker build -f docker/api.Dockerfile .
ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
# requirements.lock pins torch==2.13.0+cpu, which only the PyTorch CPU index serves.
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PATH=/opt/venv/bin:$PATH
RUN python -m venv /opt/venv
WORKDIR /app
# Dependencies first: this layer is rebuilt only when the lock file changes.
COPY requirements.lock ./
RUN pip install --extra-index-url "${TORCH_INDEX_URL}" -r requirements.lock
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY retrieval ./retrieval
COPY feedback ./feedback
COPY db ./db
# Editable, as `make setup` does: package data (migrations, web assets, demo files)
# is used from /app as it is in the repository.
RUN pip install --no-deps --no-build-isolation -e . \
    && python -m compileall -q /app

FROM ${PYTHON_IMAGE} AS runtime
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    TELLER_DATA_DIR=/data \
    TELLER_HOST=0.0.0.0 \
    TELLER_PORT=8000
RUN groupadd --system --gid 10001 teller \
    && useradd --system --uid 10001 --gid teller --home-dir /home/teller --create-home teller \
    && mkdir -p /data \
    && chown teller:teller /data
COPY --from=build /opt/venv /opt/venv
COPY --from=build /app /app
USER teller
WORKDIR /home/teller
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=5s --start-period=120s --retries=5 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=4)"]
CMD ["teller", "serve"]
