FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY swarm ./swarm
COPY workers ./workers
RUN pip install --no-cache-dir . && useradd --create-home swarm && mkdir -p /data \
    && chown swarm /data
USER swarm
CMD ["swarm", "--help"]
