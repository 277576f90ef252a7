"""Azure AI Speech neural voices through ``azure-cognitiveservices-speech``.

Authentication, read once from the environment mapping passed to
:meth:`AzureSpeechSettings.from_env` (first match wins):

1. ``AZURE_SPEECH_KEY`` + ``AZURE_SPEECH_ENDPOINT`` — key on a custom or private endpoint;
2. ``AZURE_SPEECH_KEY`` + ``AZURE_SPEECH_REGION`` — key on the regional endpoint;
3. ``AZURE_SPEECH_RESOURCE_ID`` + ``AZURE_SPEECH_REGION`` — Microsoft Entra ID: a token for
   ``https://cognitiveservices.azure.com/.default`` from azure-identity's
   ``DefaultAzureCredential`` (workload identity, managed identity, ``az login``...), passed to
   the SDK as ``aad#{resource_id}#{token}`` — the form Microsoft documents for
   ``SpeechSynthesizer`` (the SDK's ``token_credential`` parameter does not cover synthesis).
   The resource needs a custom domain and the *Cognitive Services Speech User* role.

Every request is SSML (:func:`build_ssml`), so rate and style work the same way for every
voice. The SDK is imported and its objects are built on the first synthesis: constructing an
engine never touches the network. Keys and tokens never appear in ``repr``, :meth:`describe`
or error messages.
"""

from __future__ import annotations

import enum
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from xml.sax.saxutils import escape, quoteattr

from azure.core.exceptions import AzureError

from loadtest.audio.tts import check_request
from loadtest.errors import ConfigError, TtsError

if TYPE_CHECKING:
    from azure.core.credentials import AccessToken, TokenCredential

__all__ = [
    "DEFAULT_VOICE",
    "ENTRA_SCOPE",
    "AzureAuth",
    "AzureEngine",
    "AzureSpeechSettings",
    "EntraTokenProvider",
    "build_ssml",
    "prosody_rate",
]

DEFAULT_VOICE = "en-US-JennyMultilingualNeural"
ENTRA_SCOPE = "https://cognitiveservices.azure.com/.default"

_KEY, _REGION = "AZURE_SPEECH_KEY", "AZURE_SPEECH_REGION"
_ENDPOINT, _RESOURCE_ID = "AZURE_SPEECH_ENDPOINT", "AZURE_SPEECH_RESOURCE_ID"
_HOW_TO = (
    f"set {_KEY} + {_REGION}, or {_KEY} + {_ENDPOINT}, "
    f"or {_RESOURCE_ID} + {_REGION} for Microsoft Entra ID"
)
_REGION_RE = re.compile(r"[a-z][a-z0-9]*")
_LOCALE_RE = re.compile(r"([a-z]{2,3}-[A-Z]{2})-")
_MAX_ERROR_CHARS = 600


class AzureAuth(enum.Enum):
    """How the engine authenticates to Azure Speech."""

    KEY = "key"
    ENDPOINT = "endpoint"
    ENTRA = "entra"


@dataclass(frozen=True, slots=True, repr=False)
class AzureSpeechSettings:
    """Validated Azure Speech connection settings; ``repr`` shows no key and no URL query."""

    auth: AzureAuth
    region: str | None = None
    endpoint: str | None = None
    resource_id: str | None = None
    key: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> AzureSpeechSettings:
        """Choose the auth mode from ``env`` (see the module docstring); blank means unset.

        Raises :class:`ConfigError` naming the variables to set when none of the three
        combinations is complete, or when a value is malformed.
        """
        key, region, endpoint, resource_id = (
            (env.get(name) or "").strip() or None
            for name in (_KEY, _REGION, _ENDPOINT, _RESOURCE_ID)
        )
        if region is not None and not _REGION_RE.fullmatch(region):
            raise ConfigError(
                f"{_REGION}={region!r} is not an Azure region name (e.g. westeurope, eastus)"
            )
        if endpoint is not None and not endpoint.startswith(("https://", "wss://")):
            raise ConfigError(
                f"{_ENDPOINT}={_redact_url(endpoint)!r} must start with https:// or wss://"
            )
        if resource_id is not None and not resource_id.lower().startswith("/subscriptions/"):
            raise ConfigError(
                f"{_RESOURCE_ID}={resource_id!r} is not an Azure resource ID "
                "(/subscriptions/<id>/resourceGroups/<rg>/providers/"
                "Microsoft.CognitiveServices/accounts/<name>)"
            )
        if key is not None and endpoint is not None:
            return cls(AzureAuth.ENDPOINT, region=region, endpoint=endpoint, key=key)
        if key is not None and region is not None:
            return cls(AzureAuth.KEY, region=region, key=key)
        if key is None and resource_id is not None and region is not None:
            return cls(AzureAuth.ENTRA, region=region, resource_id=resource_id)
        if key is not None:
            raise ConfigError(f"{_KEY} is set but neither {_REGION} nor {_ENDPOINT} is; {_HOW_TO}")
        if endpoint is not None:
            raise ConfigError(f"{_ENDPOINT} is set but {_KEY} is not; {_HOW_TO}")
        if resource_id is not None:
            raise ConfigError(f"{_RESOURCE_ID} is set but {_REGION} is not; {_HOW_TO}")
        raise ConfigError(f"no Azure Speech credentials in the environment: {_HOW_TO}")

    def __repr__(self) -> str:
        return f"AzureSpeechSettings({self.describe()})"

    def describe(self) -> str:
        """Auth mode and target, without secrets."""
        if self.auth is AzureAuth.ENDPOINT:
            return f"key auth, endpoint {_redact_url(self.endpoint or '')}"
        if self.auth is AzureAuth.KEY:
            return f"key auth, region {self.region}"
        account = (self.resource_id or "").rstrip("/").rsplit("/", 1)[-1]
        return f"Microsoft Entra ID, resource {account}, region {self.region}"


class EntraTokenProvider:
    """Speech authorization tokens from a Microsoft Entra credential, refreshed before expiry.

    ``refresh_margin_s``: a token is replaced when it expires within this many seconds.
    """

    def __init__(
        self, credential: TokenCredential, resource_id: str, *, refresh_margin_s: float = 300.0
    ) -> None:
        self._credential = credential
        self._resource_id = resource_id
        self._margin_s = refresh_margin_s
        self._token: AccessToken | None = None

    def auth_token(self, now_s: float) -> tuple[str, bool]:
        """``(aad#{resource_id}#{token}, refreshed)`` valid at ``now_s`` (Unix time, seconds).

        Raises :class:`TtsError` (from the credential's exception) when no token can be had.
        """
        refreshed = False
        if self._token is None or self._token.expires_on - now_s < self._margin_s:
            try:
                self._token = self._credential.get_token(ENTRA_SCOPE)
            except AzureError as exc:
                reason = _one_line(str(exc).split("\n", 1)[0])
                raise TtsError(
                    f"could not get a Microsoft Entra token for Azure Speech "
                    f"({type(exc).__name__}: {reason}); sign in (az login) or configure a "
                    f"workload/managed identity, or use {_KEY}"
                ) from exc
            refreshed = True
        return f"aad#{self._resource_id}#{self._token.token}", refreshed


def prosody_rate(rate: float) -> str:
    """SSML ``<prosody rate>`` for a speaking-rate multiplier: 1.5 → ``"+50%"``."""
    return f"{round((rate - 1.0) * 100):+d}%"


def build_ssml(text: str, *, voice: str, rate: float = 1.0, style: str | None = None) -> str:
    """SSML that speaks ``text`` (XML-escaped) with ``voice`` at ``rate``, in ``style`` if set.

    ``xml:lang`` is the voice's locale (``de-DE-KatjaNeural`` → ``de-DE``), else ``en-US``.
    Validates the request like every engine (:func:`loadtest.audio.tts.check_request`).
    """
    spoken = check_request(text, rate, 16000)
    if not voice.strip():
        raise ConfigError("Azure voice name is empty (e.g. en-US-JennyMultilingualNeural)")
    match = _LOCALE_RE.match(voice)
    lang = match.group(1) if match else "en-US"
    body = f"<prosody rate={quoteattr(prosody_rate(rate))}>{escape(spoken)}</prosody>"
    if style is not None:
        if not style.strip():
            raise ConfigError("Azure speaking style is empty (e.g. cheerful, or leave it unset)")
        body = f"<mstts:express-as style={quoteattr(style)}>{body}</mstts:express-as>"
    return (
        '<speak version="1.0" xmlns="http://www.w3.org/2001/10/synthesis" '
        f'xmlns:mstts="https://www.w3.org/2001/mstts" xml:lang={quoteattr(lang)}>'
        f"<voice name={quoteattr(voice)}>{body}</voice></speak>"
    )


class AzureEngine:
    """Azure AI Speech text to speech (see the module docstring for authentication).

    ``credential`` replaces ``DefaultAzureCredential`` for Entra ID auth (tests, or an
    application that already has one). One synthesis runs at a time per engine; create one
    engine per thread to synthesise in parallel.
    """

    name = "azure"

    def __init__(
        self,
        settings: AzureSpeechSettings,
        *,
        default_voice: str = DEFAULT_VOICE,
        credential: TokenCredential | None = None,
    ) -> None:
        self.settings = settings
        self.default_voice = default_voice
        self._credential = credential
        self._tokens: EntraTokenProvider | None = None
        self._last_token: str | None = None  # for scrubbing error messages
        self._synthesizers: dict[int, Any] = {}  # sample rate (Hz) -> SpeechSynthesizer
        self._lock = threading.Lock()

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> AzureEngine:
        """Engine configured from ``env`` (raises :class:`ConfigError`; no network)."""
        return cls(AzureSpeechSettings.from_env(env))

    def __repr__(self) -> str:
        return f"AzureEngine({self.describe()})"

    def describe(self) -> str:
        """One line for logs: auth mode, target and default voice (no key, no token)."""
        return f"Azure Speech ({self.settings.describe()}, voice {self.default_voice})"

    def synthesize(
        self,
        text: str,
        *,
        voice: str | None = None,
        rate: float = 1.0,
        style: str | None = None,
        sample_rate: int = 16000,
    ) -> bytes:
        """Speak ``text``; return PCM16 LE mono at ``sample_rate`` Hz (see :class:`TtsEngine`).

        Raises :class:`ConfigError` for bad arguments and :class:`TtsError` when the service
        cancels the synthesis (bad key, unknown voice, no network...), in one line.
        """
        check_request(text, rate, sample_rate)
        ssml = build_ssml(text, voice=voice or self.default_voice, rate=rate, style=style)
        with self._lock:
            synthesizer = self._synthesizer(sample_rate)
            try:
                result = synthesizer.speak_ssml(ssml)
            except RuntimeError as exc:  # the SDK raises RuntimeError for native failures
                raise TtsError(self._scrub(f"Azure Speech synthesis failed: {exc}")) from exc
        return self._audio(result)

    def _synthesizer(self, sample_rate: int) -> Any:
        token = self._entra_token()  # before any SDK object: credential errors stay ours
        import azure.cognitiveservices.speech as speechsdk

        synthesizer = self._synthesizers.get(sample_rate)
        if synthesizer is not None:
            if token is not None:
                synthesizer.authorization_token = token
            return synthesizer
        s = self.settings
        try:
            if s.auth is AzureAuth.ENDPOINT:
                config = speechsdk.SpeechConfig(endpoint=s.endpoint, subscription=s.key)
            elif s.auth is AzureAuth.KEY:
                config = speechsdk.SpeechConfig(subscription=s.key, region=s.region)
            else:
                config = speechsdk.SpeechConfig(auth_token=token, region=s.region)
            formats = {
                8000: speechsdk.SpeechSynthesisOutputFormat.Raw8Khz16BitMonoPcm,
                16000: speechsdk.SpeechSynthesisOutputFormat.Raw16Khz16BitMonoPcm,
                24000: speechsdk.SpeechSynthesisOutputFormat.Raw24Khz16BitMonoPcm,
            }
            config.set_speech_synthesis_output_format(formats[sample_rate])
            # audio_config=None: no speaker; the audio comes back in result.audio_data.
            synthesizer = speechsdk.SpeechSynthesizer(speech_config=config, audio_config=None)
        except (RuntimeError, ValueError) as exc:
            raise TtsError(self._scrub(f"Azure Speech SDK setup failed: {exc}")) from exc
        self._synthesizers[sample_rate] = synthesizer
        return synthesizer

    def _entra_token(self) -> str | None:
        if self.settings.auth is not AzureAuth.ENTRA:
            return None
        if self._tokens is None:
            credential = self._credential
            if credential is None:
                from azure.identity import DefaultAzureCredential

                credential = DefaultAzureCredential()
            self._tokens = EntraTokenProvider(credential, self.settings.resource_id or "")
        token, _refreshed = self._tokens.auth_token(time.time())
        self._last_token = token
        return token

    def _audio(self, result: Any) -> bytes:
        import azure.cognitiveservices.speech as speechsdk

        if result.reason == speechsdk.ResultReason.SynthesizingAudioCompleted:
            audio = bytes(result.audio_data)
            if not audio or len(audio) % 2:
                raise TtsError(f"Azure Speech returned {len(audio)} bytes, not 16-bit PCM")
            return audio
        if result.reason == speechsdk.ResultReason.Canceled:
            details = result.cancellation_details
            raise TtsError(
                self._scrub(
                    f"Azure Speech synthesis cancelled ({details.reason.name}, "
                    f"{details.error_code.name}): {details.error_details}"
                )
            )
        raise TtsError(f"Azure Speech synthesis ended with unexpected result {result.reason}")

    def _scrub(self, message: str) -> str:
        """``message`` on one line, at most ~600 chars, with the key and tokens removed."""
        line = _one_line(message)
        for secret in (self.settings.key, self._last_token):
            if secret:
                line = line.replace(secret, "***")
        return line if len(line) <= _MAX_ERROR_CHARS else line[: _MAX_ERROR_CHARS - 1] + "…"


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _redact_url(url: str) -> str:
    """``url`` without its query string and fragment (they can carry credentials)."""
    return url.split("?", 1)[0].split("#", 1)[0]
