#!/usr/bin/env bash
# Install the Debian packages that spokenqa's audio side (and its browser test) needs:
#   festival festvox-us-slt-hts  text-to-speech (voice cmu_us_slt_arctic_hts), used by spokenqa.audio.tts
#   sox                          resampling to 16 kHz mono 16-bit (sox -G), used by spokenqa.audio.tts
#   espeak-ng                    a second, fast TTS used by the tests to make speech
#   chromium                     headless browser for the browser test
#   libjemalloc2                 a malloc that keeps freed memory; scripts/release_model.sh preloads it
#                                when present (a long CPU run went from 4.0 to 1.9 s/step, see there)
# Idempotent: packages already installed are skipped and apt is not touched at all when nothing is
# missing. Run as root, or as a user with sudo. Safe for CI (non-interactive).
set -euo pipefail

PACKAGES=(festival festvox-us-slt-hts sox espeak-ng chromium libjemalloc2)

missing=()
for pkg in "${PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$pkg")
    fi
done

if [ "${#missing[@]}" -eq 0 ]; then
    echo "setup_debian: all packages present (${PACKAGES[*]})"
    exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
    SUDO=()
elif command -v sudo >/dev/null 2>&1; then
    SUDO=(sudo)
else
    echo "setup_debian: need root or sudo to install: ${missing[*]}" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
echo "setup_debian: installing ${missing[*]}"
# Retry apt-get update a few times: a mirror may be briefly unreachable.
for attempt in 1 2 3; do
    if "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q; then
        break
    fi
    if [ "$attempt" -eq 3 ]; then
        echo "setup_debian: apt-get update failed" >&2
        exit 1
    fi
    sleep 5
done
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -q --no-install-recommends "${missing[@]}"

# Check that the commands the project calls are really there.
for cmd in festival text2wave sox espeak-ng chromium; do
    if ! command -v "$cmd" >/dev/null 2>&1; then
        echo "setup_debian: '$cmd' not found after install" >&2
        exit 1
    fi
done
echo "setup_debian: done"
