# One image for every Tracehouse process; docker-compose.yml picks the command.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY collector collector
COPY analytics analytics
COPY dashboard dashboard
COPY sdk_shim sdk_shim
# The clickhouse extra: TRACEHOUSE_STORE=clickhouse://... (the compose profile `clickhouse`).
RUN pip install --no-cache-dir ".[clickhouse]" \
    && useradd --system --uid 10001 --home-dir /app tracehouse \
    && mkdir -p /data && chown tracehouse /data
# The database lives on a volume; a fresh named volume takes /data's owner (the tracehouse user).
VOLUME /data
USER tracehouse
ENV TRACEHOUSE_HOST=0.0.0.0 \
    TRACEHOUSE_DB=/data/tracehouse.duckdb \
    PYTHONUNBUFFERED=1
EXPOSE 4317 4318 8501
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=5 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:4318/healthz', timeout=2)"]
# SIGTERM lets the collector commit what it accepted and checkpoint before exiting.
STOPSIGNAL SIGTERM
CMD ["tracehouse", "collector"]
