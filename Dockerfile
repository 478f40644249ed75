# The ChaosDemo operator image: `make image` (docker build -t chaosdemo-operator:dev .)
# BASE_IMAGE is python:3.11-slim; the local tier's test builds on a Debian bookworm base it
# assembles itself (no registry here), so the same steps run in both places.
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
# The dependencies first, in a layer of their own: a change to the code (or the README) alone reuses it.
COPY pyproject.toml ./
RUN python -m venv /opt/chaosdemo \
 && python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
    > requirements.txt \
 && /opt/chaosdemo/bin/pip install -r requirements.txt "setuptools>=77"
COPY README.md ./
COPY operator ./operator
# operator/ holds the operator alone: the proving ground (proving/) is a distribution of its own.
RUN /opt/chaosdemo/bin/pip install --no-deps --no-build-isolation .

FROM ${BASE_IMAGE}
LABEL org.opencontainers.image.title="chaosdemo-operator" \
      org.opencontainers.image.description="Kills a TiKV store, detects, diagnoses and measures recovery"
RUN groupadd --gid 10001 chaosdemo && useradd --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin chaosdemo
COPY --from=build /opt/chaosdemo /opt/chaosdemo
ENV PATH=/opt/chaosdemo/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
USER 10001:10001
EXPOSE 8080
ENTRYPOINT ["chaosdemo"]
CMD ["run", "--liveness", "http://0.0.0.0:8080/healthz"]
