# syntax=docker/dockerfile:1
# The dialer: `dialer serve` by default; the compose file also runs it once as
# `dialer asterisk-conf render ...` to render asterisk_conf/ for the Asterisk container.
# Build context: the repository root (docker build -f docker/dialer.Dockerfile .); only the
# files let through by dialer.Dockerfile.dockerignore are sent.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# espeak-ng and sox render the IVR flows' `tts:` prompts (offline, 8 kHz) into the media
# volume that Asterisk plays them from.
RUN apt-get update \
 && apt-get install -y --no-install-recommends espeak-ng sox \
 && rm -rf /var/lib/apt/lists/*

COPY . /src
# /etc/dialer-asterisk belongs to the dialer user so that the named volume mounted there (the
# rendered Asterisk configuration) starts out writable by the one-shot render service.
RUN pip install --no-cache-dir /src \
 && rm -rf /src \
 && groupadd --system --gid 10001 dialer \
 && useradd --system --uid 10001 --gid dialer --home-dir /app --no-create-home \
        --shell /usr/sbin/nologin dialer \
 && mkdir -p /app /etc/dialer-asterisk /var/lib/dialer-ivr \
 && chown dialer:dialer /app /etc/dialer-asterisk /var/lib/dialer-ivr

WORKDIR /app
USER 10001:10001
EXPOSE 8080
ENTRYPOINT ["dialer"]
CMD ["serve"]
