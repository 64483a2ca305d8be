# modelshield in a container: `docker run --rm -v "$PWD:/data" modelshield scan /data/models`
# Local scans need no network at run time; hf:// and https:// targets use it only when given.
FROM python:3.12-slim

LABEL org.opencontainers.image.title="modelshield" \
      org.opencontainers.image.description="Static ML supply-chain scanner and ML-BOM generator" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://github.com/modelshield/modelshield"

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /opt/modelshield
COPY pyproject.toml setup.py README.md ./
COPY modelshield ./modelshield
COPY scanner ./scanner
COPY sbom ./sbom
COPY advisories ./advisories
# The package is this checkout (its dependency ranges live in pyproject.toml), so there is no version to pin.
# hadolint ignore=DL3013
RUN pip install --no-cache-dir ".[formats]" \
    && useradd --create-home --uid 10001 --shell /usr/sbin/nologin modelshield

USER 10001:10001
WORKDIR /data
ENTRYPOINT ["modelshield"]
CMD ["--help"]
