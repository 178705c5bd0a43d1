# syntax=docker/dockerfile:1
# callscribe, GPU image: the FunAudio engine (torch, transformers, peft) with SGLang decoding,
# plus CTranslate2 on CUDA for Whisper. The bundled Whisper base model is prepared at build
# time; Fun-ASR-Nano weights are not shipped: mount their folder at /models (read-only) and
# point CALLSCRIBE_MODEL at it. Nothing is downloaded when a container starts.
#
#   docker build -f docker/gpu.Dockerfile -t callscribe:gpu .
#
# CUDA *devel*: SGLang's kernels (flashinfer) are compiled on first use with nvcc. cuDNN 9 and
# cuBLAS 12 are what CTranslate2's CUDA build loads. Ubuntu 24.04's Python 3.12 is the newest
# the pjsua2 wheels support.

ARG CUDA_IMAGE=nvidia/cuda:12.8.1-cudnn-devel-ubuntu24.04

FROM ${CUDA_IMAGE} AS build
ENV DEBIAN_FRONTEND=noninteractive PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3.12 python3.12-venv python3.12-dev build-essential \
 && rm -rf /var/lib/apt/lists/* \
 && python3.12 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY pyproject.toml constraints.txt README.md ./
COPY asr_core asr_core
COPY admin_api admin_api
COPY callscribe callscribe
COPY migrations migrations
COPY telephony telephony
COPY worker worker
# constraints.txt pins torch==2.13.0: from PyPI on Linux x86_64 that is the CUDA build.
RUN pip install --constraint constraints.txt --upgrade pip \
 && pip install --constraint constraints.txt ".[funaudio,gpu]"
ENV CALLSCRIBE_MODEL_CACHE_DIR=/opt/callscribe/models
RUN callscribe models prepare whisper-base

FROM ${CUDA_IMAGE}
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3.12 libgomp1 tini \
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
    CALLSCRIBE_WORKER_EMBEDDED=false \
    CALLSCRIBE_DEVICE=cuda \
    CALLSCRIBE_COMPUTE_TYPE=float16
USER callscribe
WORKDIR /var/lib/callscribe
VOLUME ["/var/lib/callscribe"]
EXPOSE 7860
HEALTHCHECK --interval=15s --timeout=5s --start-period=600s --retries=3 \
  CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('CALLSCRIBE_PORT', '7860'), timeout=4)"
ENTRYPOINT ["tini", "--", "callscribe"]
CMD ["serve"]
