# syntax=docker/dockerfile:1
# token-broker image: build with the full toolchain, run on production dependencies only.
#   docker build -t token-broker:0.1.0 .
#   docker run --read-only --tmpfs /tmp -e BROKER_CONFIG=/etc/token-broker/config/config.yaml \
#     -v "$PWD/config:/etc/token-broker/config:ro" -p 8080:8080 token-broker:0.1.0
# Base: Node.js 24, the Active LTS line until October 2026 and in maintenance until April 2028, on
# Debian 13 (trixie) slim. Pinned to an exact release; pin the digest too (node:…@sha256:…) in the
# registry you build from, and let a dependency bot bump both. The app needs Node >= 20.19.

FROM node:24.21.0-trixie-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

FROM node:24.21.0-trixie-slim AS prod-deps
WORKDIR /app
COPY package.json package-lock.json ./
# Production dependencies only, without install scripts: the optional PKCS#11 binding (pkcs11js)
# is not compiled here. An image for keys in an HSM builds it (README, "Keys in an HSM or Azure Key Vault").
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force

FROM node:24.21.0-trixie-slim AS runtime
ENV NODE_ENV=production
WORKDIR /app
# Owned by root and read-only to the app: the process can change none of its own code.
COPY --from=prod-deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
# The image's unprivileged "node" user, by number so runAsNonRoot can verify it.
USER 1000:1000
EXPOSE 8080
# Writes nothing outside /tmp, so it runs with a read-only root filesystem.
CMD ["node", "dist/main.js"]
