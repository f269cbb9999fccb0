# lensserve: one service process per accelerator.
#
#   GPU (default):  docker build -t lensserve .
#                   docker run --gpus device=0 -p 8000:8000 -v lensserve-cache:/cache \
#                       -v lensserve-data:/data lensserve
#   CPU:            docker build --build-arg TARGET=cpu -t lensserve:cpu .
#
# On a node with several GPUs run one container per GPU (--gpus device=N, its own port): each
# process owns one device and its own batcher. The JAX wheels bring their own CUDA libraries; the
# host needs the NVIDIA driver and container toolkit only. The install steps are the README's.
ARG PYTHON_IMAGE=python:3.11-slim
FROM ${PYTHON_IMAGE}

# gpu: pip install -e ".[gpu]" (jax[cuda12]); cpu: pip install -e .
ARG TARGET=gpu

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN useradd --create-home --uid 10001 lensserve \
    && mkdir -p /app /cache /data \
    && chown lensserve:lensserve /cache /data
WORKDIR /app

COPY pyproject.toml README.md ./
COPY likelihood ./likelihood
COPY nnls ./nnls
COPY service ./service
COPY client ./client

RUN if [ "$TARGET" = "gpu" ]; then pip install -e ".[gpu]"; else pip install -e .; fi

USER lensserve

# Inside a container the service must listen beyond loopback; the compile caches (JAX's, and
# Numba's for the CPU curvature kernel, whose source tree is not writable here) live on a volume so
# a restarted container loads what the first compiled instead of compiling it again (README:
# the start-up table under Serving). The registry of lenses registered at runtime (SQLite unless
# LENSSERVE_REGISTRY_URL names a PostgreSQL database) lives on its own volume: it is state, not cache.
ENV LENSSERVE_HOST=0.0.0.0 \
    LENSSERVE_PORT=8000 \
    LENSSERVE_COMPILATION_CACHE_DIR=/cache/jax \
    LENSSERVE_DATA_DIR=/data \
    NUMBA_CACHE_DIR=/cache/numba
VOLUME ["/cache", "/data"]
EXPOSE 8000

# /healthz touches no device and needs no token; /readyz is the probe for traffic.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"

# uvicorn handles SIGTERM: stop accepting, finish in-flight requests and queued batches, exit.
STOPSIGNAL SIGTERM
CMD ["lensserve", "serve"]
