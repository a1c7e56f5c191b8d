# syntax=docker/dockerfile:1
#
# Gatehouse container image.
#
#   docker build -t gatehouse:dev .
#   docker run --rm --read-only --tmpfs /tmp -p 8080:8080 \
#     -v "$PWD/gatehouse.yaml:/etc/gatehouse/gatehouse.yaml:ro" gatehouse:dev
#
# The configuration is read from /etc/gatehouse/gatehouse.yaml (GATEHOUSE_CONFIG); mount signing
# keys under /etc/gatehouse/keys/. The config must set `listen.host: 0.0.0.0` (the default,
# 127.0.0.1, is unreachable from outside the container). The process runs as uid/gid 1000,
# writes nothing outside /tmp, and is PID 1: SIGTERM goes straight to Node, which drains
# in-flight requests for `shutdown.graceSeconds` and exits.
#
# Node.js 24 is the LTS line whose newest release we could verify (24.21.0); it is supported until
# April 2028. Bump NODE_VERSION with each patch release; .ci/image-build-check reproduces these
# steps with exactly this Node version.
ARG NODE_VERSION=24.21.0
ARG DEBIAN_RELEASE=trixie

# ---- build: all dependencies, compile TypeScript to dist/ --------------------------------------
FROM node:${NODE_VERSION}-${DEBIAN_RELEASE}-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

# ---- deps: production dependencies only --------------------------------------------------------
FROM node:${NODE_VERSION}-${DEBIAN_RELEASE}-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund

# ---- runtime -----------------------------------------------------------------------------------
FROM node:${NODE_VERSION}-${DEBIAN_RELEASE}-slim AS runtime

ARG VERSION=0.0.0-dev
ARG REVISION=unknown
ARG CREATED=1970-01-01T00:00:00Z
ARG SOURCE_URL=""
LABEL org.opencontainers.image.title="Gatehouse" \
      org.opencontainers.image.description="OAuth 2.1 authorization gateway for MCP servers" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.source="${SOURCE_URL}" \
      org.opencontainers.image.base.name="docker.io/library/node:${NODE_VERSION}-${DEBIAN_RELEASE}-slim"

# The runtime needs node only: drop the package managers the base image ships, so that nothing
# in the image can install code at run time and scanners have less to report. Create the
# config and key directories (files are mounted over them).
RUN rm -rf /usr/local/lib/node_modules/npm /usr/local/lib/node_modules/corepack \
           /usr/local/bin/npm /usr/local/bin/npx /usr/local/bin/corepack \
           /opt/yarn-* /usr/local/bin/yarn /usr/local/bin/yarnpkg \
 && mkdir -p /etc/gatehouse/keys

ENV NODE_ENV=production \
    GATEHOUSE_CONFIG=/etc/gatehouse/gatehouse.yaml \
    HOME=/tmp \
    TMPDIR=/tmp

WORKDIR /app
# Files stay owned by root and read-only for the service user: the image is immutable at run time.
# package.json is needed at run time: it declares "type": "module" for dist/*.js.
COPY package.json ./
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist

# The image's `node` user (uid/gid 1000), numeric so that Kubernetes can verify runAsNonRoot.
USER 1000:1000
EXPOSE 8080
# Exec form: node is PID 1 and receives SIGTERM itself (no shell, no npm in between).
ENTRYPOINT ["node", "/app/dist/cli.js"]
CMD ["serve"]
