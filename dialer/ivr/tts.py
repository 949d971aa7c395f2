"""Offline text-to-speech for `tts:` prompts: espeak-ng -> 8 kHz mono 16-bit WAV, cached.

Theory of operation. The flow interpreter (dialer/ivr/engine.py) never renders audio: its `Play`
command carries `Speech(text, language, voice)` items with the text already templated. The ARI
driver calls `TtsCache.render(text, voice=..., language=...)` for each, gets a WAV file in a
directory Asterisk can read, and plays it as ``sound:<path without .wav>`` (`sound_uri`).

* Rendering is offline: Debian's ``espeak-ng`` (no network), installed by scripts/bootstrap.sh.
* Output is what Asterisk's ``wav`` format plays without transcoding from a slin16 source:
  8 kHz, mono, 16-bit signed PCM. ``sox`` resamples (with its proper low-pass filter) when it is
  installed; otherwise a small pure-Python windowed-sinc resampler does it (Python's `audioop`
  is deprecated and gone in 3.13, so it is not used).
* Cache key: sha256 over (format version, resolved espeak voice, text). The same text in the
  same voice is rendered once, ever; a changed text gets a new file, so a call that is playing
  the old file is never affected. Files are written to a temporary name and renamed into place,
  so Asterisk can never open a half-written WAV.
* Voices: flow files name voices per language (``defaults.tts.voice``). Cloud-style names such
  as ``en-US-Standard-C`` are not espeak voices, so `resolve_voice` falls back from the
  configured voice to the language tag (``en-US`` -> ``en-us``) and then to its primary subtag
  (``en``).
"""

from __future__ import annotations

import array
import functools
import hashlib
import math
import os
import shutil
import subprocess
import sys
import tempfile
import wave
from dataclasses import dataclass
from pathlib import Path

from dialer.errors import DialerError

__all__ = ["SAMPLE_RATE", "TtsCache", "TtsError", "TtsResult", "resample", "resolve_voice", "sound_uri"]

SAMPLE_RATE = 8000
#: Bump when the output format or the pipeline changes, so old cache entries are not reused.
FORMAT_VERSION = "espeak-ng/8k-mono-s16/v1"
#: A prompt longer than this is almost certainly a mistake (and would block espeak for long).
MAX_TEXT = 4000
RENDER_TIMEOUT_S = 30.0


class TtsError(DialerError):
    """Text could not be rendered (no espeak-ng, unknown voice, espeak failed)."""


@dataclass(frozen=True, slots=True)
class TtsResult:
    path: Path          # the cached 8 kHz WAV
    voice: str          # the espeak-ng voice actually used
    duration_s: float
    cached: bool        # True if the file was already in the cache


def sound_uri(path: Path) -> str:
    """ARI media URI for a WAV file (Asterisk adds the extension itself)."""
    return "sound:" + str(path.with_suffix(""))


@functools.lru_cache(maxsize=4)
def _espeak_voices(espeak: str) -> frozenset[str]:
    """Voice identifiers espeak-ng knows (the `Language` column of ``--voices``), lower-case."""
    try:
        out = subprocess.run([espeak, "--voices"], capture_output=True, text=True, check=True,
                             timeout=RENDER_TIMEOUT_S).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise TtsError(f"cannot list espeak-ng voices ({espeak}): {exc}") from None
    voices = set()
    for line in out.splitlines()[1:]:
        # Pty Language Age/Gender VoiceName File Other-languages, e.g.
        #  2  en-us  --/M  English_(America)  gmw/en-US  (en 3)
        cols = line.split()
        if len(cols) >= 2:
            voices.add(cols[1].lower())
        if len(cols) >= 5:
            voices.add(cols[4].rsplit("/", 1)[-1].lower())  # file name: "en" for gmw/en
        voices.update(tok[1:].lower() for tok in cols[5:] if tok.startswith("("))
    return frozenset(voices)


def resolve_voice(voice: str | None, language: str, available: frozenset[str]) -> str:
    """The espeak-ng voice for a configured voice name and a BCP-47 language tag.

    Tried in order: the configured voice, the language tag, its primary subtag. Raises
    `TtsError` naming what was tried when none exists.
    """
    tried: list[str] = []
    for candidate in (voice, language, language.split("-")[0]):
        if not candidate:
            continue
        name = candidate.strip().lower().replace("_", "-")
        if name in tried:
            continue
        tried.append(name)
        if name in available:
            return name
    raise TtsError(f"no espeak-ng voice for voice={voice!r} language={language!r} "
                   f"(tried {', '.join(tried)}); see `espeak-ng --voices`")


# --------------------------------------------------------------------------- resampling
def _sinc_kernel(ratio: float, half_width: int) -> list[float]:
    """Low-pass FIR (Blackman-windowed sinc), cut-off at 0.9 x the output Nyquist frequency."""
    cutoff = 0.45 * ratio  # in cycles per input sample; output Nyquist is 0.5 * ratio
    taps = []
    for n in range(-half_width, half_width + 1):
        x = 2 * cutoff * n
        sinc = 1.0 if n == 0 else math.sin(math.pi * x) / (math.pi * x)
        w = 0.42 + 0.5 * math.cos(math.pi * n / (half_width + 1)) \
            + 0.08 * math.cos(2 * math.pi * n / (half_width + 1))
        taps.append(2 * cutoff * sinc * w)
    return taps


def resample(samples: array.array[int], rate_in: int, rate_out: int = SAMPLE_RATE) -> array.array[int]:
    """Resample 16-bit mono PCM: low-pass (when downsampling), then linear interpolation.

    Used only when sox is absent. Quality is adequate for 8 kHz telephone audio.
    """
    if rate_in == rate_out or not samples:
        return array.array("h", samples)
    src: list[float] = [float(s) for s in samples]
    if rate_out < rate_in:
        taps = _sinc_kernel(rate_out / rate_in, 16)
        half = len(taps) // 2
        n = len(src)
        padded = [0.0] * half + src + [0.0] * half
        src = [sum(t * padded[i + k] for k, t in enumerate(taps)) for i in range(n)]
    count = int(len(src) * rate_out / rate_in)
    out = array.array("h")
    step = rate_in / rate_out
    last = len(src) - 1
    for i in range(count):
        pos = i * step
        j = int(pos)
        frac = pos - j
        a = src[j]
        b = src[j + 1] if j < last else a
        value = round(a + (b - a) * frac)
        out.append(max(-32768, min(32767, value)))
    return out


def _read_mono16(path: Path) -> tuple[array.array[int], int]:
    with wave.open(str(path), "rb") as wav:
        if wav.getsampwidth() != 2:
            raise TtsError(f"{path}: expected 16-bit PCM from espeak-ng, got {8 * wav.getsampwidth()}-bit")
        rate, channels = wav.getframerate(), wav.getnchannels()
        data = array.array("h")
        data.frombytes(wav.readframes(wav.getnframes()))
    if sys.byteorder == "big":
        data.byteswap()
    if channels > 1:
        data = array.array("h", (sum(data[i:i + channels]) // channels
                                 for i in range(0, len(data), channels)))
    return data, rate


def _write_mono16(path: Path, samples: array.array[int], rate: int) -> None:
    if sys.byteorder == "big":
        samples = array.array("h", samples)
        samples.byteswap()
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(samples.tobytes())


def wav_duration(path: Path) -> float:
    with wave.open(str(path), "rb") as wav:
        return wav.getnframes() / float(wav.getframerate())


class TtsCache:
    """Renders and caches TTS prompts in `directory` (created if missing).

    `espeak` and `sox` are program names or paths; ``sox=None`` finds sox on PATH, and
    ``sox=""`` forces the pure-Python resampler.
    """

    def __init__(self, directory: Path, *, espeak: str = "espeak-ng", sox: str | None = None) -> None:
        self.directory = directory
        self.espeak = espeak
        self.sox = shutil.which("sox") if sox is None else (sox or None)

    def key(self, text: str, voice: str) -> str:
        payload = "\0".join((FORMAT_VERSION, voice, text)).encode()
        return hashlib.sha256(payload).hexdigest()

    def path_for(self, text: str, voice: str) -> Path:
        return self.directory / f"tts-{self.key(text, voice)}.wav"

    def voices(self) -> frozenset[str]:
        if shutil.which(self.espeak) is None:
            raise TtsError(f"{self.espeak} is not installed (apt-get install espeak-ng); "
                           "it renders the flows' tts: prompts")
        return _espeak_voices(self.espeak)

    def render(self, text: str, *, language: str, voice: str | None = None) -> TtsResult:
        """The cached 8 kHz WAV for `text`, rendering it first if needed."""
        text = text.strip()
        if not text:
            raise TtsError("empty text")
        if len(text) > MAX_TEXT:
            raise TtsError(f"text is {len(text)} characters; the limit is {MAX_TEXT}")
        espeak_voice = resolve_voice(voice, language, self.voices())
        target = self.path_for(text, espeak_voice)
        if target.exists():
            return TtsResult(target, espeak_voice, wav_duration(target), cached=True)
        self.directory.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=self.directory, prefix=".render-") as tmp:
            raw = Path(tmp) / "raw.wav"
            out = Path(tmp) / "out.wav"
            self._espeak(text, espeak_voice, raw)
            self._convert(raw, out)
            os.chmod(out, 0o644)  # Asterisk runs as another user
            os.replace(out, target)
        return TtsResult(target, espeak_voice, wav_duration(target), cached=False)

    def _espeak(self, text: str, voice: str, out: Path) -> None:
        # Text goes on stdin, so text starting with "-" is never taken for an option.
        try:
            proc = subprocess.run([self.espeak, "-v", voice, "-w", str(out), "--stdin"],
                                  input=text.encode(), capture_output=True, check=False,
                                  timeout=RENDER_TIMEOUT_S)
        except (OSError, subprocess.SubprocessError) as exc:
            raise TtsError(f"espeak-ng failed: {exc}") from None
        if proc.returncode != 0 or not out.exists():
            raise TtsError(f"espeak-ng -v {voice} failed ({proc.returncode}): "
                           f"{proc.stderr.decode(errors='replace').strip()}")

    def _convert(self, raw: Path, out: Path) -> None:
        if self.sox:
            try:
                proc = subprocess.run(
                    [self.sox, str(raw), "-r", str(SAMPLE_RATE), "-c", "1", "-b", "16",
                     "-e", "signed-integer", str(out)],
                    capture_output=True, check=False, timeout=RENDER_TIMEOUT_S)
            except (OSError, subprocess.SubprocessError) as exc:
                raise TtsError(f"sox failed: {exc}") from None
            if proc.returncode != 0:
                raise TtsError(f"sox failed ({proc.returncode}): "
                               f"{proc.stderr.decode(errors='replace').strip()}")
            return
        samples, rate = _read_mono16(raw)
        _write_mono16(out, resample(samples, rate, SAMPLE_RATE), SAMPLE_RATE)
