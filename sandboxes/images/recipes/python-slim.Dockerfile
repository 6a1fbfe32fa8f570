# For users with a registry: the same sandbox contract on the official Python image instead of the
# offline base. DockerSandbox needs bash, coreutils and a uid-1000 user able to own /workspace;
# rsync makes reset() faster (it falls back to find + cp without it).
FROM python:3.12-slim
RUN apt-get update && apt-get install -y --no-install-recommends git rsync procps \
    && rm -rf /var/lib/apt/lists/* \
    && pip install --no-cache-dir pytest \
    && useradd --create-home --uid 1000 agent \
    && mkdir -p /workspace && chown 1000:1000 /workspace
WORKDIR /workspace
