# Multi-stage build of the feedhub image. The build stage compiles the
# TypeScript and the native better-sqlite3 module; the runtime stage keeps
# only production dependencies and the compiled code, and runs as a non-root
# user.
FROM node:20-bookworm-slim AS build
WORKDIR /app
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
RUN npm ci
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY scripts/copy-assets.mjs ./scripts/copy-assets.mjs
RUN npm run build && npm prune --omit=dev

FROM node:20-bookworm-slim
ENV NODE_ENV=production \
    FEEDHUB_HOST=0.0.0.0 \
    FEEDHUB_PORT=8080 \
    FEEDHUB_DATA_DIR=/var/lib/feedhub \
    FEEDHUB_COLLECTIONS_DIR=/app/collections
WORKDIR /app
RUN groupadd --system feedhub \
 && useradd --system --gid feedhub --home-dir /var/lib/feedhub --shell /usr/sbin/nologin feedhub \
 && mkdir -p /var/lib/feedhub \
 && chown feedhub:feedhub /var/lib/feedhub
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
COPY schemas ./schemas
COPY collections ./collections
# The sample collections read the bundled feed snapshots.
COPY test/fixtures/feeds ./test/fixtures/feeds
USER feedhub
EXPOSE 8080
VOLUME ["/var/lib/feedhub"]
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD node -e "fetch('http://127.0.0.1:' + (process.env.FEEDHUB_PORT || 8080) + '/readyz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"
ENTRYPOINT ["node", "dist/app/main.js"]
