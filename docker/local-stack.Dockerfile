# The local stack's AWS stand-in (moto), model bootstrap, API and stream runner, for
# docker-compose.yml. Build from the repository root. Not deployed: Lambda runs the zip.
FROM python:3.12.8-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY requirements/ requirements/
# requirements/lambda.txt reads the functions' pins from functions/requirements.txt
COPY functions/requirements.txt functions/requirements.txt
RUN pip install -r requirements/local-stack.txt
COPY pyproject.toml template.yaml ./
COPY functions functions
COPY training training
COPY local local
RUN pip install --no-deps -e . && useradd --create-home --uid 10001 stack \
    && mkdir -p /state /app/artifacts && chown stack /state /app/artifacts
USER stack
EXPOSE 5000 8000
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=5 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(os.environ.get('HEALTH_URL', 'http://127.0.0.1:8000/health'), timeout=4)"]
CMD ["python", "-m", "local", "--help"]
