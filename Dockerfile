# The `flow` executable in a small Debian image: one image for every actor, chosen by
# the command (`worker default`, `worker ml`, `worker openai`).
FROM swift:6.1-bookworm AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends librabbitmq-dev libcurl4-openssl-dev libopenblas-dev libsqlite3-dev pkg-config \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN swift build -c release --product flow --static-swift-stdlib \
    && install -m 0755 .build/release/flow /usr/local/bin/flow \
    && cp -R .build/release/*.resources /usr/local/bin/

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        librabbitmq4 libcurl4 libopenblas0 libsqlite3-0 libxml2 poppler-utils curl ca-certificates tzdata \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --uid 10001 --create-home --home-dir /var/lib/flow flow \
    && mkdir -p /var/lib/flow/data && chown -R flow /var/lib/flow
# flow and SwiftPM's resource bundles, which it finds beside itself.
COPY --from=build /usr/local/bin/ /usr/local/bin/
USER flow
ENV FLOW_DATA_DIR=/var/lib/flow/data
VOLUME /var/lib/flow/data
ENTRYPOINT ["flow"]
CMD ["--help"]
