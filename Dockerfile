# syntax=docker/dockerfile:1
# One image for every hexmarket process: `hexmarket serve | consume-orders | relay-outbox |
# write-logs | migrate | produce-orders`. Servers come from HEXMARKET_* environment variables.

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
RUN python -m venv /opt/hexmarket
COPY pyproject.toml README.md ./
COPY src ./src
# the tracing extra: OpenTelemetry, off unless an OTLP endpoint is configured
RUN /opt/hexmarket/bin/pip install ".[tracing]"

FROM python:3.11-slim
ENV PATH=/opt/hexmarket/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HEXMARKET_HTTP_HOST=0.0.0.0 \
    HEXMARKET_HTTP_PORT=8080 \
    HEXMARKET_LOG_JSON=true
RUN useradd --system --uid 10001 --home-dir /app hexmarket && mkdir -p /app && chown hexmarket /app
COPY --from=build /opt/hexmarket /opt/hexmarket
USER hexmarket
WORKDIR /app
EXPOSE 8080 9100
# The HTTP process answers /ready only when every server it needs does; the workers override
# this with their metrics port.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/ready', timeout=2)"]
ENTRYPOINT ["hexmarket"]
CMD ["serve"]
