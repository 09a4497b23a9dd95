# One image for every service; the compose file picks the module to run.
# The dashboard's scripts come from the npm registry, pinned by the lockfile, and are served by the gateway.
FROM node:20-slim AS assets
WORKDIR /web
COPY services/gateway/web/package.json services/gateway/web/package-lock.json ./
RUN npm ci --no-audit --no-fund

FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY contracts contracts
COPY gongdi gongdi
COPY services services
COPY deploy/city.yaml deploy/city.yaml
COPY --from=assets /web/node_modules services/gateway/web/node_modules
RUN pip install --no-cache-dir -e .
USER nobody
CMD ["python", "-m", "services.membership", "serve"]
