# shoprank runtime image: indexer, front door and sidecar (never torch: models are built on the
# host with `make models` / `shoprank models build` and mounted at /data/models).
#   CPU (default):  docker build -t shoprank .
#   GPU sidecar:    docker build -t shoprank:gpu --build-arg EXTRAS=gpu \
#                     --build-arg BASE_IMAGE=nvidia/cuda:12.6.3-cudnn-runtime-ubuntu24.04 .
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}

ARG EXTRAS=cpu
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PATH=/opt/venv/bin:$PATH \
    SHOPRANK_DATA_DIR=/data SHOPRANK_OPENSEARCH_DIR=/app/opensearch

# CUDA base images carry no Python; the slim image has one.
RUN if ! command -v python3 >/dev/null 2>&1 || ! python3 -m venv --help >/dev/null 2>&1; then \
      apt-get update && apt-get install -y --no-install-recommends python3 python3-venv && rm -rf /var/lib/apt/lists/*; \
    fi && python3 -m venv /opt/venv && /opt/venv/bin/pip install --no-cache-dir --upgrade pip
# LightGBM (the sidecar's LTR stage) links the system OpenMP runtime; neither base image ships it.
RUN apt-get update && apt-get install -y --no-install-recommends libgomp1 && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY pyproject.toml constraints.txt README.md ./
COPY shoprank ./shoprank
COPY sidecar ./sidecar
COPY indexer ./indexer
COPY engines ./engines
COPY intent ./intent
COPY frontdoor ./frontdoor
COPY relevance ./relevance
COPY training ./training
COPY proto ./proto
COPY opensearch ./opensearch
RUN pip install --no-cache-dir -c constraints.txt ".[${EXTRAS}]"

RUN useradd --create-home --uid 10001 shoprank && mkdir -p /data && chown shoprank /data
USER shoprank
VOLUME ["/data"]
EXPOSE 8080 50051
ENTRYPOINT ["shoprank"]
CMD ["--help"]
