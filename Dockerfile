# The service's image: the locked dependencies (every file checked against its hash in
# requirements.lock), the code, and a user that is not root. docs/deploy.md tells more.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    TIMELINE_HOME=/var/lib/timeline
WORKDIR /app

# The dependencies from the lock alone, before the code: a change of code keeps this layer.
COPY requirements.lock ./
RUN pip install --no-cache-dir --require-hashes --no-deps -r requirements.lock

COPY pyproject.toml README.md ./
COPY domain domain
COPY projections projections
COPY service service
COPY drafting drafting
COPY data data
# The project itself and nothing more (the seed is read from /app/data, so in place).
RUN pip install --no-cache-dir --no-deps -e . \
    && groupadd --system --gid 10001 timeline \
    && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/timeline --create-home \
        timeline

# By number, so that a runtime that refuses root can tell without reading /etc/passwd.
USER 10001:10001
EXPOSE 8000
# Ready: the store answers and the read models are near the head of the log. (There is no
# curl in a slim image: Python asks.)
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/ready', timeout=4)"]
CMD ["timeline", "serve", "--host", "0.0.0.0"]
