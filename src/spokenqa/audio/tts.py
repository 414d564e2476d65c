"""Text to speech with Festival, the way the Spoken-SQuAD style data here was made.

Festival's ``text2wave`` speaks the text with a voice (default ``cmu_us_slt_arctic_hts``, Debian
package ``festvox-us-slt-hts``), then ``sox -G`` (with ``-R``: repeatable dither) converts it to 16 kHz mono 16-bit PCM WAV, the
input format of spokenqa.audio.asr. ``scripts/setup_debian.sh`` installs both programs.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import unicodedata
from pathlib import Path

from spokenqa.errors import AudioError

DEFAULT_VOICE = "cmu_us_slt_arctic_hts"
SAMPLE_RATE = 16000
SETUP_HINT = "run scripts/setup_debian.sh (Debian packages festival festvox-us-slt-hts sox)"

# Characters Festival (Latin-1, English front end) does not read well, mapped before ASCII folding.
_PUNCT_MAP = {
    "\u2013": " - ",  # en dash
    "\u2014": " - ",  # em dash
    "\u2212": "-",  # minus sign
    "\u2018": "'",
    "\u2019": "'",
    "\u201c": '"',
    "\u201d": '"',
    "\u2026": "...",
    "\u00a0": " ",
    "\u00d7": " x ",
    "\u00b0": " degrees ",
}


def festival_text(text: str) -> str:
    """Return ``text`` as plain ASCII for Festival: accents dropped (ü -> u), dashes and curly
    quotes made ASCII, characters with no ASCII form removed, whitespace collapsed."""
    for src, dst in _PUNCT_MAP.items():
        text = text.replace(src, dst)
    text = unicodedata.normalize("NFKD", text)
    text = text.encode("ascii", "ignore").decode("ascii")
    return " ".join(text.split())


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise AudioError(f"'{name}' not found on PATH: {SETUP_HINT}")
    return path


def available() -> bool:
    """True when text2wave and sox are both installed (tests skip on False)."""
    return shutil.which("text2wave") is not None and shutil.which("sox") is not None


def speak(
    text: str,
    wav_path: str | os.PathLike[str],
    voice: str = DEFAULT_VOICE,
    *,
    timeout: float = 300.0,
) -> float:
    """Speak ``text`` into ``wav_path`` (16 kHz mono 16-bit WAV) and return its duration in s.

    Raises AudioError when Festival or sox is missing, the voice is not installed, the text has
    nothing to speak, or a program fails (the message names the output file).
    """
    wav_path = Path(wav_path)
    clean = festival_text(text)
    if not any(ch.isalnum() for ch in clean):
        raise AudioError(f"{wav_path}: nothing to speak in text {text[:40]!r}")
    if not voice.replace("_", "").isalnum():
        raise AudioError(f"{wav_path}: invalid Festival voice name {voice!r}")
    text2wave = _tool("text2wave")
    sox = _tool("sox")
    with tempfile.TemporaryDirectory(prefix="spokenqa-tts-") as tmp:
        txt = Path(tmp) / "in.txt"
        raw = Path(tmp) / "raw.wav"
        txt.write_text(clean + "\n", encoding="ascii")
        cmd = [text2wave, "-eval", f"(voice_{voice})", str(txt), "-o", str(raw)]
        proc = _run(cmd, wav_path, timeout)
        err = (proc.stderr or "") + (proc.stdout or "")
        if "SIOD ERROR" in err or not raw.exists() or raw.stat().st_size <= 44:
            if f"voice_{voice}" in err:
                raise AudioError(
                    f"{wav_path}: Festival voice {voice!r} is not installed: {SETUP_HINT}"
                )
            raise AudioError(f"{wav_path}: text2wave failed: {_first_line(err)}")
        wav_path.parent.mkdir(parents=True, exist_ok=True)
        # -G guards against clipping; -r/-c/-b give the ASR input format; -R seeds sox's dither
        # with a fixed number, so the same text always gives the same samples.
        cmd = [sox, "-R", "-G", str(raw), "-r", str(SAMPLE_RATE), "-c", "1", "-b", "16",
               str(wav_path)]
        _run(cmd, wav_path, timeout, check=True)
    return _wav_duration(wav_path)


def _run(
    cmd: list[str], wav_path: Path, timeout: float, check: bool = False
) -> subprocess.CompletedProcess[str]:
    name = Path(cmd[0]).name
    try:
        proc = subprocess.run(
            cmd, check=False, capture_output=True, text=True, errors="replace", timeout=timeout
        )
    except subprocess.TimeoutExpired:
        raise AudioError(f"{wav_path}: {name} took more than {timeout:.0f} s") from None
    except OSError as exc:
        raise AudioError(f"{wav_path}: cannot run {name}: {exc}") from None
    if check and proc.returncode != 0:
        raise AudioError(
            f"{wav_path}: {name} failed (exit {proc.returncode}): {_first_line(proc.stderr)}"
        )
    return proc


def _first_line(text: str) -> str:
    for line in (text or "").splitlines():
        if line.strip():
            return line.strip()[:200]
    return "no output"


def _wav_duration(path: Path) -> float:
    import wave

    try:
        with wave.open(str(path), "rb") as w:
            return w.getnframes() / float(w.getframerate())
    except (wave.Error, EOFError, OSError) as exc:
        raise AudioError(f"{path}: sox wrote no readable WAV: {exc}") from None
