# One image for every Tracehouse process; docker-compose.yml picks the command.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY collector collector
COPY analytics analytics
COPY dashboard dashboard
COPY sdk_shim sdk_shim
RUN pip install --no-cache-dir .
ENV TRACEHOUSE_HOST=0.0.0.0 \
    TRACEHOUSE_DB=/data/tracehouse.duckdb
EXPOSE 4317 4318 8501
CMD ["tracehouse", "collector"]
