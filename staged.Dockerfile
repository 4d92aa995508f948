# histcalc runtime image built from the sources in two stages:
#   builder - makes the wheel (`python -m build --wheel`) from pyproject.toml + src/, with the C kernels
#   runtime - the same layers as ./Dockerfile, but the wheel is copied from the builder
# so neither `build`, hatchling nor the sources end up in the final image.
#   docker build -f staged.Dockerfile -t histcalc:staged .
#
# No `# syntax=` line on purpose: it makes the builder pull a frontend image from a registry.
ARG BASE_IMAGE=python:3.11-slim-bookworm

FROM ${BASE_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
# gcc compiles histcalc's C counting kernels into the wheel (hatch_build.py); it stays in this stage.
# The builder is thrown away, so neither gcc (DL3008) nor `build` (DL3013) needs a pin; the build
# backend (hatchling) is pinned by pyproject.toml's [build-system].
# hadolint ignore=DL3008,DL3013
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc libc6-dev \
 && rm -rf /var/lib/apt/lists/* \
 && pip install --no-cache-dir build
WORKDIR /src
COPY pyproject.toml README.md hatch_build.py ./
COPY src/ src/
RUN python -m build --wheel --outdir /dist . && ls -l /dist \
 && ls /dist/histcalc-*-py3-none-linux_*.whl

FROM ${BASE_IMAGE}

ENV LANG=C.UTF-8 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    JAVA_HOME=/usr/lib/jvm/java-17 \
    PYSPARK_PYTHON=/usr/local/bin/python \
    PYSPARK_DRIVER_PYTHON=/usr/local/bin/python

SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# Identical to ./Dockerfile up to the wheel install, so the two builds share these layers.
# Versions are not pinned (DL3008): bookworm's security updates replace the exact versions,
# so a pin would break the build within weeks; the base image tag fixes the release instead.
# hadolint ignore=DL3008
RUN mkdir -p /usr/share/man/man1 \
 && apt-get update \
 && apt-get install -y --no-install-recommends openjdk-17-jre-headless procps \
 && ln -s "$(dirname "$(dirname "$(readlink -f "$(command -v java)")")")" "${JAVA_HOME}" \
 && "${JAVA_HOME}/bin/java" -version \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/*

RUN groupadd --gid 1000 histcalc \
 && useradd --create-home --uid 1000 --gid 1000 --shell /bin/bash histcalc

ARG PYSPARK_VERSION=""
COPY --from=builder /dist/ /tmp/wheels/
RUN pip install --no-cache-dir /tmp/wheels/histcalc-*.whl ${PYSPARK_VERSION:+"pyspark==${PYSPARK_VERSION}"} \
 && rm -rf /tmp/wheels \
 && python -c "import histcalc, pyspark; print('histcalc', histcalc.__file__, 'pyspark', pyspark.__version__)"

COPY scripts/submit_job.sh /spark_submits/submit_job.sh
COPY scripts/env/ /spark_submits/env/
RUN chmod 0755 /spark_submits/submit_job.sh

ARG IMAGE_REF=histcalc:latest
ENV HISTCALC_IMAGE=${IMAGE_REF}

# Numeric, so a runtime that checks runAsNonRoot can tell (DL3066).
USER 1000:1000
WORKDIR /home/histcalc
CMD ["histcalc", "--help"]
