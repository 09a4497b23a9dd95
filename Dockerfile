# One image for every service; the compose file picks the module to run.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY contracts contracts
COPY gongdi gongdi
COPY services services
COPY deploy/city.yaml deploy/city.yaml
RUN pip install --no-cache-dir .
USER nobody
CMD ["python", "-m", "services.membership", "serve"]
