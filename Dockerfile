# syntax=docker/dockerfile:1

# ---- build: every dependency, then type-check the whole tree; a type error fails the image build.
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN --mount=type=cache,target=/root/.npm npm ci --no-audit --no-fund
COPY . .
RUN npx tsc --noEmit -p .

# ---- runtime: system ffmpeg and fonts, production dependencies only. TypeScript runs through tsx
# (a production dependency, loaded by bin/dreambot.js), so there is no compiled output to copy.
FROM node:20-bookworm-slim AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends ffmpeg fonts-dejavu-core ca-certificates tini \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
ENV NODE_ENV=production
COPY package.json package-lock.json ./
RUN --mount=type=cache,target=/root/.npm npm ci --omit=dev --no-audit --no-fund
# Copied from the build stage (not the context) so the type-check above always runs first.
COPY --from=build /app/src ./src
COPY --from=build /app/commands ./commands
COPY --from=build /app/adapters ./adapters
COPY --from=build /app/migrations ./migrations
COPY --from=build /app/bin ./bin
COPY --from=build /app/workflows ./workflows
# Root owns the code; the service runs unprivileged and writes only to /tmp (ffmpeg scratch files).
USER node
ENV FFMPEG_PATH=/usr/bin/ffmpeg \
    FFPROBE_PATH=/usr/bin/ffprobe \
    HTTP_PORT=3000
EXPOSE 3000
# Every role (bot, worker, all) serves /healthz on HTTP_PORT; it does no I/O, so it only says "alive".
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.HTTP_PORT || 3000) + '/healthz', { signal: AbortSignal.timeout(4000) }).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# tini reaps ffmpeg children and forwards SIGTERM, so the graceful shutdown (SHUTDOWN_GRACE_MS) runs.
ENTRYPOINT ["tini", "--", "node", "bin/dreambot.js"]
CMD ["start"]
