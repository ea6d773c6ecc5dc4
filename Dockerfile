FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY domain domain
COPY projections projections
COPY service service
COPY data data
RUN pip install --no-cache-dir -e .
EXPOSE 8000
CMD ["timeline", "serve", "--host", "0.0.0.0"]
