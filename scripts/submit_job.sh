#!/usr/bin/env bash
# Submit the histcalc job (histcalc/job.py of the installed package) with spark-submit.
#
# Default: YARN, cluster deploy mode, driver (application master) and executors in Docker
# containers of $IMAGE with the Terrascope data mounted read-only. SPARK_MASTER / DEPLOY_MODE
# retarget it, e.g. a standalone cluster (Python apps there need client mode):
#   SPARK_MASTER=spark://host:7077 DEPLOY_MODE=client submit_job.sh --start-date=2024-05-01
#
# Usage: submit_job.sh [--dry-run] [--env NAME|FILE] [--conf KEY=VALUE]... [--] [JOB FLAGS...]
# Only these leading options are the script's own; everything after them (or after `--`) is
# handed to the job verbatim as separate, quoted arguments ("$@", never eval).
#
# Environment (all optional; the cluster env file sets defaults, the caller's values win):
#   IMAGE                         Docker image for driver and executors   [$HISTCALC_IMAGE or histcalc:latest]
#   MOUNTS                        YARN Docker mounts, comma separated      [Terrascope NDVI V2, read-only]
#   EXTRA_MOUNTS                  appended to MOUNTS
#   DOCKER_CLIENT_CONFIG          docker config.json (e.g. on HDFS) with private registry credentials
#   HISTOGRAM__PROCESSOR_MEMORY   executor memory                          [4G]
#   HISTOGRAM__PROCESSOR_EXECUTOR_CORES  executor cores                    [1]
#   HISTOGRAM__DRIVER_MEMORY      driver memory                            [spark's default]
#   HISTOGRAM__PROCESSOR_MAX_EXECUTORS   upper bound for dynamic allocation [unset]
#   HISTOGRAM__APP_NAME           application name                         [histcalc]
#   SPARK_MASTER / DEPLOY_MODE    [yarn / cluster]
#   YARN_QUEUE                    YARN queue                               [unset]
#   CONTAINER_PYSPARK_PYTHON      Python inside the containers             [/usr/local/bin/python]
#   CONTAINER_JAVA_HOME           JAVA_HOME inside the containers          [/usr/lib/jvm/java-17]
#   SPARK_SUBMIT                  spark-submit to run        [$SPARK_HOME/bin/spark-submit or PATH]
#   JOB_FILE                      the job file        [histcalc/job.py of $HISTCALC_PYTHON's histcalc]
#   HISTCALC_PYTHON               Python used to find the job file   [$PYSPARK_PYTHON or python3]
#   HISTCALC_SPARK_ENV            env file: spark35, spark4 or a path  [from the installed pyspark]
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
DATA_MOUNT="/data/MTDA/TERRASCOPE_Sentinel2/NDVI_V2/:/data/MTDA/TERRASCOPE_Sentinel2/NDVI_V2/:ro"

die() { echo "submit_job.sh: $*" >&2; exit 2; }
warn() { echo "submit_job.sh: $*" >&2; }
usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; }

dry_run=0
env_choice="${HISTCALC_SPARK_ENV:-}"
extra_conf=()
while (($#)); do
    case "$1" in
        --dry-run) dry_run=1; shift ;;
        --env) (($# >= 2)) || die "--env needs a value"; env_choice=$2; shift 2 ;;
        --env=*) env_choice=${1#--env=}; shift ;;
        --conf) (($# >= 2)) || die "--conf needs KEY=VALUE"; extra_conf+=(--conf "$2"); shift 2 ;;
        --conf=*) extra_conf+=(--conf "${1#--conf=}"); shift ;;
        -h|--help) usage; exit 0 ;;
        --) shift; break ;;
        *) break ;;
    esac
done
job_args=("$@")

helper_python="${HISTCALC_PYTHON:-${PYSPARK_PYTHON:-python3}}"

pyspark_series() {  # major.minor of the pyspark that $helper_python imports, or nothing
    "$helper_python" -c 'import pyspark; print(".".join(pyspark.__version__.split(".")[:2]))' 2>/dev/null || true
}

env_file_for() {  # NAME (spark35, spark4) or a path -> path of the env file
    case "$1" in
        */*|*.env) echo "$1" ;;
        *) echo "${SCRIPT_DIR}/env/$1.env" ;;
    esac
}

local_series=$(pyspark_series)
if [[ -z "$env_choice" ]]; then
    case "$local_series" in
        3.*) env_choice=spark35 ;;
        *) env_choice=spark4 ;;
    esac
fi
env_file=$(env_file_for "$env_choice")
[[ -r "$env_file" ]] || die "no readable env file '$env_file' (HISTCALC_SPARK_ENV / --env)"
SPARK_ENV_CONF=()
# shellcheck source=env/spark4.env
source "$env_file"

if [[ -n "${SPARK_SERIES:-}" && -n "$local_series" && "$local_series" != "${SPARK_SERIES}"* ]]; then
    warn "pyspark here is $local_series but $(basename "$env_file") targets Spark ${SPARK_SERIES}"
fi

: "${IMAGE:=${HISTCALC_IMAGE:-histcalc:latest}}"
: "${MOUNTS:=$DATA_MOUNT}"
MOUNTS="${MOUNTS}${EXTRA_MOUNTS:+,${EXTRA_MOUNTS}}"
: "${SPARK_MASTER:=yarn}"
: "${DEPLOY_MODE:=cluster}"
: "${CONTAINER_PYSPARK_PYTHON:=/usr/local/bin/python}"
: "${CONTAINER_JAVA_HOME:=/usr/lib/jvm/java-17}"
executor_memory="${HISTOGRAM__PROCESSOR_MEMORY:-4G}"
executor_cores="${HISTOGRAM__PROCESSOR_EXECUTOR_CORES:-1}"
app_name="${HISTOGRAM__APP_NAME:-histcalc}"

memory_re='^[0-9]+([kKmMgGtT][bB]?)?$'
[[ "$executor_memory" =~ $memory_re ]] || die "HISTOGRAM__PROCESSOR_MEMORY='$executor_memory' is no size like 4G or 8gb"
[[ -z "${HISTOGRAM__DRIVER_MEMORY:-}" || "$HISTOGRAM__DRIVER_MEMORY" =~ $memory_re ]] \
    || die "HISTOGRAM__DRIVER_MEMORY='$HISTOGRAM__DRIVER_MEMORY' is no size like 2G"
[[ "$executor_cores" =~ ^[1-9][0-9]*$ ]] || die "HISTOGRAM__PROCESSOR_EXECUTOR_CORES='$executor_cores' is no positive integer"
[[ "$DEPLOY_MODE" == client || "$DEPLOY_MODE" == cluster ]] || die "DEPLOY_MODE='$DEPLOY_MODE' is neither client nor cluster"
[[ "$SPARK_MASTER" == spark://* && "$DEPLOY_MODE" == cluster ]] \
    && warn "Python applications on a standalone master need DEPLOY_MODE=client"

if [[ -z "${SPARK_SUBMIT:-}" ]]; then
    if [[ -n "${SPARK_HOME:-}" && -x "${SPARK_HOME}/bin/spark-submit" ]]; then
        SPARK_SUBMIT="${SPARK_HOME}/bin/spark-submit"
    else
        SPARK_SUBMIT=spark-submit
    fi
fi

if [[ -z "${JOB_FILE:-}" ]]; then
    JOB_FILE=$("$helper_python" -c 'import histcalc.job, sys; sys.stdout.write(histcalc.job.__file__)' 2>/dev/null) || JOB_FILE=""
    if [[ -z "$JOB_FILE" ]]; then
        ((dry_run)) || die "cannot import histcalc.job with '$helper_python': set JOB_FILE or HISTCALC_PYTHON"
        warn "histcalc is not importable with '$helper_python'; showing a placeholder job file"
        JOB_FILE="histcalc/job.py"
    fi
fi

# The same environment for the driver (YARN application master) and the executors.
container_env=(
    "YARN_CONTAINER_RUNTIME_TYPE=docker"
    "YARN_CONTAINER_RUNTIME_DOCKER_IMAGE=${IMAGE}"
    "YARN_CONTAINER_RUNTIME_DOCKER_MOUNTS=${MOUNTS}"
    "PYSPARK_PYTHON=${CONTAINER_PYSPARK_PYTHON}"
    "JAVA_HOME=${CONTAINER_JAVA_HOME}"
)
if [[ -n "${DOCKER_CLIENT_CONFIG:-}" ]]; then
    container_env+=("YARN_CONTAINER_RUNTIME_DOCKER_CLIENT_CONFIG=${DOCKER_CLIENT_CONFIG}")
fi

cmd=("$SPARK_SUBMIT" --master "$SPARK_MASTER" --deploy-mode "$DEPLOY_MODE" --name "$app_name")
[[ -n "${YARN_QUEUE:-}" ]] && cmd+=(--queue "$YARN_QUEUE")
cmd+=(--executor-memory "$executor_memory" --executor-cores "$executor_cores")
[[ -n "${HISTOGRAM__DRIVER_MEMORY:-}" ]] && cmd+=(--driver-memory "$HISTOGRAM__DRIVER_MEMORY")
for kv in "${container_env[@]}"; do
    cmd+=(--conf "spark.yarn.appMasterEnv.${kv}")
done
for kv in "${container_env[@]}"; do
    cmd+=(--conf "spark.executorEnv.${kv}")
done
cmd+=(--conf "spark.pyspark.python=${CONTAINER_PYSPARK_PYTHON}")
if [[ -n "${HISTOGRAM__PROCESSOR_MAX_EXECUTORS:-}" ]]; then
    cmd+=(--conf "spark.dynamicAllocation.maxExecutors=${HISTOGRAM__PROCESSOR_MAX_EXECUTORS}")
fi
# Cluster-specific settings from the env file (an array), then the caller's --conf options.
cmd+=("${SPARK_ENV_CONF[@]}" "${extra_conf[@]}")
spark_opts=("${cmd[@]:1}")
cmd+=("$JOB_FILE" "${job_args[@]}")

if ((dry_run)); then
    # Shell-quoted (printf %q), one option per line: paste it into a shell and it runs as is.
    printf '%q' "${cmd[0]}"
    for ((i = 0; i < ${#spark_opts[@]}; i += 2)); do
        printf ' \\\n    %q' "${spark_opts[i]}"
        ((i + 1 < ${#spark_opts[@]})) && printf ' %q' "${spark_opts[i + 1]}"
    done
    printf ' \\\n    %q' "$JOB_FILE"
    for arg in "${job_args[@]}"; do printf ' \\\n    %q' "$arg"; done
    printf '\n'
    exit 0
fi

echo "submit_job.sh: $(basename "$env_file"), master ${SPARK_MASTER} (${DEPLOY_MODE}), image ${IMAGE}" >&2
exec "${cmd[@]}"
