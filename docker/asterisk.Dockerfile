# syntax=docker/dockerfile:1
# Asterisk 22 from Debian sid: the SAME Debian packages the testbed installs into its cached
# root (dialer.testbed.ROOT_PACKAGES; tests/test_docker.py checks the list), so the tests and
# production run the same Asterisk. The configuration is not baked in: the compose file's
# asterisk-config service renders asterisk_conf/ into a volume mounted at /etc/dialer-asterisk
# (the `astetcdir` of the rendered asterisk.conf).
FROM debian:sid-slim

ARG DEBIAN_FRONTEND=noninteractive

# sid's Release file can be past its validity date, hence Check-Valid-Until=false. Versions
# are not pinned: like the testbed, the image follows sid.
# hadolint ignore=DL3008
RUN apt-get -o Acquire::Check-Valid-Until=false update \
 && apt-get install -y --no-install-recommends asterisk asterisk-modules asterisk-core-sounds-en-gsm \
 && rm -rf /var/lib/apt/lists/*

# asterisk.conf names the amd64 module directory; on other architectures point that path at
# the real one. Fails the build if ARI's module is missing. Then the directories asterisk.conf
# uses, owned by the asterisk user the package created.
RUN moddir="$(dirname "$(find /usr/lib -path '*/asterisk/modules/res_ari.so' -print -quit)")" \
 && test -f "$moddir/res_ari.so" \
 && if [ "$moddir" != /usr/lib/x86_64-linux-gnu/asterisk/modules ]; then \
        mkdir -p /usr/lib/x86_64-linux-gnu/asterisk \
        && ln -s "$moddir" /usr/lib/x86_64-linux-gnu/asterisk/modules; \
    fi \
 && mkdir -p /run/asterisk /var/lib/asterisk /var/log/asterisk /var/spool/asterisk/recording \
 && chown -R asterisk:asterisk /run/asterisk /var/lib/asterisk /var/log/asterisk \
        /var/spool/asterisk

# The Debian package creates the asterisk user with a system uid chosen at install time.
# hadolint ignore=DL3066
USER asterisk
# 8088: HTTP/ARI (compose network only, never published); SIP and RTP ports come from the
# rendered pjsip.conf / rtp.conf (see docker/dialer.yaml).
EXPOSE 8088 5060/udp
CMD ["asterisk", "-C", "/etc/dialer-asterisk/asterisk.conf", "-f", "-n"]
