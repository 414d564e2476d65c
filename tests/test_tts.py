"""spokenqa.audio.tts with the real Festival and sox (skipped when scripts/setup_debian.sh was not run)."""

from __future__ import annotations

import importlib.util
import shutil
import wave

import pytest

from spokenqa.audio import tts
from spokenqa.errors import AudioError


def _voice_installed(voice: str = tts.DEFAULT_VOICE) -> bool:
    from pathlib import Path

    return any(Path("/usr/share/festival/voices").glob(f"*/{voice}"))


needs_festival = pytest.mark.skipif(
    not tts.available() or not _voice_installed(),
    reason="Festival, its voice cmu_us_slt_arctic_hts or sox missing: run scripts/setup_debian.sh",
)


@needs_festival
def test_speak_writes_16k_mono_wav(tmp_path):
    out = tmp_path / "sub" / "hello.wav"
    duration = tts.speak("The bridge was built in 1932.", out)
    with wave.open(str(out)) as w:
        assert w.getframerate() == 16000
        assert w.getnchannels() == 1
        assert w.getsampwidth() == 2
        assert w.getnframes() / 16000 == pytest.approx(duration)
    assert 1.5 < duration < 4.0


@needs_festival
@pytest.mark.skipif(importlib.util.find_spec("pocketsphinx") is None, reason="pocketsphinx not installed")
def test_speak_then_transcribe(tmp_path):
    from spokenqa.audio.asr import transcribe

    out = tmp_path / "s.wav"
    tts.speak("The capital of Norway is Oslo.", out)
    tr = transcribe(out, engine="pocketsphinx", segment=False)
    assert tr.text == "the capital of norway is oslo."
    assert tr.words[-1].end_s <= tr.duration


@needs_festival
def test_speak_is_repeatable(tmp_path):
    tts.speak("Same text.", tmp_path / "a.wav")
    tts.speak("Same text.", tmp_path / "b.wav")
    assert (tmp_path / "a.wav").read_bytes() == (tmp_path / "b.wav").read_bytes()


@needs_festival
def test_accents_and_dashes_are_spoken(tmp_path):
    out = tmp_path / "a.wav"
    assert tts.speak("Schützenfest – “Hannover”", out) > 0.5


@needs_festival
def test_unknown_voice_is_a_clear_error(tmp_path):
    with pytest.raises(AudioError, match="voice 'no_such_voice' is not installed.*setup_debian.sh"):
        tts.speak("Hello.", tmp_path / "x.wav", voice="no_such_voice")
    with pytest.raises(AudioError, match="invalid Festival voice name"):
        tts.speak("Hello.", tmp_path / "x.wav", voice="(quit)")


def test_nothing_to_speak(tmp_path):
    with pytest.raises(AudioError, match="nothing to speak"):
        tts.speak(" ... — ", tmp_path / "x.wav")


def test_missing_festival_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty folder: no text2wave, no sox
    assert shutil.which("text2wave") is None
    assert not tts.available()
    with pytest.raises(AudioError, match="text2wave.*scripts/setup_debian.sh"):
        tts.speak("Hello.", tmp_path / "x.wav")


def test_festival_text():
    assert tts.festival_text("Schützenfest  in\u00a0Hannover – “big”") == 'Schutzenfest in Hannover - "big"'
    assert tts.festival_text("日本") == ""
