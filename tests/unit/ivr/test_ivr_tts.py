"""Offline TTS: espeak-ng renders prompts to 8 kHz mono 16-bit WAVs, cached by content hash.
espeak-ng and sox are installed by scripts/bootstrap.sh; without them these tests fail."""

from __future__ import annotations

import array
import math
import shutil
import wave
from pathlib import Path

import pytest

from dialer.ivr.tts import SAMPLE_RATE, TtsCache, TtsError, resample, resolve_voice, sound_uri

VOICES = frozenset({"en", "en-us", "es", "es-419"})


def _format(path: Path) -> tuple[int, int, int, float]:
    with wave.open(str(path), "rb") as wav:
        return (
            wav.getframerate(),
            wav.getnchannels(),
            wav.getsampwidth(),
            wav.getnframes() / wav.getframerate(),
        )


def test_espeak_ng_and_sox_are_installed() -> None:
    assert shutil.which("espeak-ng"), "install espeak-ng (scripts/bootstrap.sh does)"
    assert shutil.which("sox"), "install sox (scripts/bootstrap.sh does)"


@pytest.mark.parametrize("sox", [None, ""], ids=["sox", "python-resampler"])
def test_given_text_when_rendered_then_an_8khz_mono_16bit_wav_is_cached(
    tmp_path: Path, sox: str | None
) -> None:
    cache = TtsCache(tmp_path, sox=sox)
    first = cache.render("For billing, press 1.", language="en-US", voice="en-US-Standard-C")
    rate, channels, width, seconds = _format(first.path)
    assert (rate, channels, width) == (SAMPLE_RATE, 1, 2)
    assert 0.5 < seconds < 5.0
    assert first.voice == "en-us"
    assert not first.cached
    again = cache.render("For billing, press 1.", language="en-US", voice="en-US-Standard-C")
    assert again.cached
    assert again.path == first.path
    assert sorted(p.name for p in tmp_path.iterdir()) == [first.path.name]  # no temp files left


def test_given_another_voice_or_text_then_another_cache_file(tmp_path: Path) -> None:
    cache = TtsCache(tmp_path)
    a = cache.render("Hola", language="es")
    b = cache.render("Hola", language="en")
    c = cache.render("Hola.", language="es")
    assert len({a.path, b.path, c.path}) == 3
    assert sound_uri(a.path) == "sound:" + str(a.path)[: -len(".wav")]


@pytest.mark.parametrize(
    ("voice", "language", "expected"),
    [
        ("en-us", "en", "en-us"),
        ("en-US-Standard-C", "en-US", "en-us"),  # cloud voice name: fall back to the language
        (None, "es-MX", "es"),  # unknown region: the primary subtag
        ("ES_419", "es", "es-419"),
    ],
)
def test_given_a_configured_voice_then_the_espeak_voice_is_resolved(
    voice: str | None, language: str, expected: str
) -> None:
    assert resolve_voice(voice, language, VOICES) == expected


def test_given_no_voice_for_the_language_then_the_error_names_what_was_tried() -> None:
    with pytest.raises(TtsError, match="tried xx-yy, xx"):
        resolve_voice(None, "xx-YY", VOICES)


@pytest.mark.parametrize("text", ["", "   ", "x" * 5000])
def test_given_empty_or_huge_text_then_rendering_is_refused(tmp_path: Path, text: str) -> None:
    with pytest.raises(TtsError):
        TtsCache(tmp_path).render(text, language="en")
    assert not list(tmp_path.iterdir())


def test_given_a_missing_espeak_binary_then_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(TtsError, match="not installed"):
        TtsCache(tmp_path, espeak="espeak-ng-does-not-exist").render("hi", language="en")


def _tone(freq: float, rate: int, seconds: float = 0.5) -> array.array[int]:
    return array.array(
        "h", (int(8000 * math.sin(2 * math.pi * freq * i / rate)) for i in range(int(rate * seconds)))
    )


def _rms(samples: array.array[int]) -> float:
    body = samples[len(samples) // 10 : -len(samples) // 10]
    return math.sqrt(sum(s * s for s in body) / len(body))


def test_given_22khz_audio_when_resampled_then_speech_band_is_kept_and_aliases_are_filtered() -> None:
    speech = resample(_tone(1000, 22050), 22050, 8000)
    alias = resample(_tone(6000, 22050), 22050, 8000)  # above the 4 kHz Nyquist of 8 kHz audio
    assert len(speech) == 4000
    assert _rms(speech) > 0.8 * _rms(_tone(1000, 22050))
    assert _rms(alias) < 0.1 * _rms(_tone(6000, 22050))
