# rtcedge image: built once (`docker compose build`), then started without network access
# to a registry. Data and certificates live in volumes (see docker-compose.yml).
FROM node:20-bookworm AS build
# Build tools for better-sqlite3 and the native TURN data plane (native/).
RUN apt-get update && apt-get install -y --no-install-recommends g++ make python3 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY package.json package-lock.json ./
COPY native ./native
RUN npm ci --ignore-scripts && npm rebuild better-sqlite3 && node native/build.mjs
COPY tsconfig.json ./
COPY src ./src
RUN npx tsc -p tsconfig.json && npm prune --omit=dev

FROM node:20-bookworm-slim
WORKDIR /opt/rtcedge
COPY --from=build /src/package.json ./
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY --from=build /src/native/build ./native/build
COPY config/rtcedge.example.yaml /etc/rtcedge/rtcedge.yaml
RUN sed -i "s|^data_dir: .*|data_dir: /var/lib/rtcedge|" /etc/rtcedge/rtcedge.yaml
# State (database, secret, admin token, generated certificate) in /var/lib/rtcedge, owned by node (uid 1000).
RUN mkdir -p /var/lib/rtcedge && chown node:node /var/lib/rtcedge && chmod 0700 /var/lib/rtcedge
USER node
ENV RTCEDGE_CONFIG=/etc/rtcedge/rtcedge.yaml
VOLUME ["/var/lib/rtcedge"]
EXPOSE 5060/udp 5060/tcp 5061/tcp 3478/udp 3478/tcp
ENTRYPOINT ["node", "/opt/rtcedge/dist/cli/main.js"]
CMD ["serve"]
HEALTHCHECK --interval=30s --timeout=5s CMD node -e "fetch('http://127.0.0.1:9060/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
