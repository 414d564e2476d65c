"""Audio in and out: speech recognition with word times (pocketsphinx, Whisper) and speech
synthesis (Festival, espeak-ng)."""
