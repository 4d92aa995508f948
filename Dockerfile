# histcalc runtime image: Python, Java 17 (for Spark), a prebuilt histcalc wheel and the
# spark-submit wrapper at /spark_submits/.
#
# The wheel comes from an earlier step (`python -m build`, written to dist/). It holds the C counting
# kernels compiled for the build machine's platform (py3-none-linux_x86_64: build it on the image's
# architecture with a glibc no newer than the image's; without a C compiler it is py3-none-any and
# histcalc counts with numba):
#   docker build --build-arg PACKAGE_NAME=histcalc-0.1.0-py3-none-linux_x86_64.whl -t histcalc:latest .
# staged.Dockerfile builds the wheel itself instead; both share the layers up to the wheel install.
#
# No `# syntax=` line on purpose: it makes the builder pull a frontend image from a registry.
ARG BASE_IMAGE=python:3.11-slim-bookworm
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

# Java 17 for Spark (bookworm: openjdk-17; trixie has none). procps gives `ps`, which Spark's
# scripts call. JAVA_HOME is an arch-independent link to the JRE that apt installed.
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

# Non-root runtime user. On YARN the Docker runtime starts containers as the submitting user
# (--user uid:gid), so this user only matters for `docker run` and standalone clusters.
RUN groupadd --gid 1000 histcalc \
 && useradd --create-home --uid 1000 --gid 1000 --shell /bin/bash histcalc

# The wheel (and, optionally, a pyspark pinned to the cluster's Spark, e.g. 3.5.5).
ARG PACKAGE_DIR=dist
ARG PACKAGE_NAME
ARG PYSPARK_VERSION=""
COPY ${PACKAGE_DIR}/${PACKAGE_NAME} /tmp/wheels/
RUN if [ -z "${PACKAGE_NAME}" ]; then \
        echo "pass the wheel: --build-arg PACKAGE_NAME=histcalc-<version>-py3-none-<platform>.whl" >&2; exit 1; \
    fi \
 && pip install --no-cache-dir "/tmp/wheels/${PACKAGE_NAME}" ${PYSPARK_VERSION:+"pyspark==${PYSPARK_VERSION}"} \
 && rm -rf /tmp/wheels \
 && python -c "import histcalc, pyspark; print('histcalc', histcalc.__file__, 'pyspark', pyspark.__version__)"

COPY scripts/submit_job.sh /spark_submits/submit_job.sh
COPY scripts/env/ /spark_submits/env/
RUN chmod 0755 /spark_submits/submit_job.sh

# The image's own name, so /spark_submits/submit_job.sh run inside it submits with this image.
ARG IMAGE_REF=histcalc:latest
ENV HISTCALC_IMAGE=${IMAGE_REF}

# Numeric, so a runtime that checks runAsNonRoot can tell (DL3066).
USER 1000:1000
WORKDIR /home/histcalc
CMD ["histcalc", "--help"]
