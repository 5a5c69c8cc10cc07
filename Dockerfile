# Siphon, built from this repository on Debian 12 (the platform it is developed and tested on).
# docker build -t siphon . && docker run --rm -v $PWD/deploy:/etc/siphon siphon run --config /etc/siphon/siphon.yaml
FROM debian:12-slim AS build
RUN apt-get update && apt-get install -y --no-install-recommends \
      build-essential cmake pkg-config libpq-dev librdkafka-dev libavro-dev libyaml-dev \
      libjansson-dev libcmocka-dev libmariadb-dev unixodbc-dev libcurl4-openssl-dev \
      libmicrohttpd-dev ca-certificates \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY CMakeLists.txt ./
COPY src ./src
COPY connectors ./connectors
COPY tests ./tests
COPY bench ./bench
RUN cmake -S . -B build -DCMAKE_BUILD_TYPE=Release && cmake --build build -j"$(nproc)" --target siphon

FROM debian:12-slim
RUN apt-get update && apt-get install -y --no-install-recommends \
      libpq5 librdkafka1 libavro23 libyaml-0-2 libjansson4 ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --home /var/lib/siphon --create-home siphon
COPY --from=build /src/build/siphon /usr/local/bin/siphon
COPY mappings /etc/siphon/mappings
COPY schemas /etc/siphon/schemas
USER siphon
VOLUME ["/var/lib/siphon"]
ENTRYPOINT ["/usr/local/bin/siphon"]
CMD ["run", "--config", "/etc/siphon/siphon.yaml"]
