"""Azure TTS engine: credentials matrix, SSML builder, secrets hygiene (no Azure needed)."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import xml.etree.ElementTree as ET

import pytest
from azure.core.credentials import AccessToken
from azure.core.exceptions import ClientAuthenticationError

from loadtest.audio import tts
from loadtest.audio.tts_azure import (
    DEFAULT_VOICE,
    ENTRA_SCOPE,
    AzureAuth,
    AzureEngine,
    AzureSpeechSettings,
    EntraTokenProvider,
    build_ssml,
    prosody_rate,
)
from loadtest.errors import ConfigError, TtsError

KEY = "k3y-Sup3rS3cret-0123456789abcdef"
REGION = "westeurope"
ENDPOINT = "https://my-speech.cognitiveservices.azure.com/"
RESOURCE_ID = (
    "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/"
    "Microsoft.CognitiveServices/accounts/my-speech"
)
SSML_NS = "{http://www.w3.org/2001/10/synthesis}"
MSTTS_NS = "{https://www.w3.org/2001/mstts}"


# --- credentials matrix -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "auth"),
    [
        ({"AZURE_SPEECH_KEY": KEY, "AZURE_SPEECH_REGION": REGION}, AzureAuth.KEY),
        ({"AZURE_SPEECH_KEY": KEY, "AZURE_SPEECH_ENDPOINT": ENDPOINT}, AzureAuth.ENDPOINT),
        (
            {
                "AZURE_SPEECH_KEY": KEY,
                "AZURE_SPEECH_ENDPOINT": ENDPOINT,
                "AZURE_SPEECH_REGION": REGION,
            },
            AzureAuth.ENDPOINT,
        ),
        (
            {"AZURE_SPEECH_RESOURCE_ID": RESOURCE_ID, "AZURE_SPEECH_REGION": REGION},
            AzureAuth.ENTRA,
        ),
        (  # a key wins over Entra ID when both are configured
            {
                "AZURE_SPEECH_KEY": KEY,
                "AZURE_SPEECH_REGION": REGION,
                "AZURE_SPEECH_RESOURCE_ID": RESOURCE_ID,
            },
            AzureAuth.KEY,
        ),
        ({"AZURE_SPEECH_KEY": f"  {KEY}\n", "AZURE_SPEECH_REGION": f" {REGION} "}, AzureAuth.KEY),
    ],
)
def test_auth_mode_is_chosen_from_env(env: dict[str, str], auth: AzureAuth) -> None:
    settings = AzureSpeechSettings.from_env(env)
    assert settings.auth is auth
    if auth is not AzureAuth.ENTRA:
        assert settings.key == KEY
    else:
        assert settings.key is None
        assert settings.resource_id == RESOURCE_ID


@pytest.mark.parametrize(
    ("env", "must_name"),
    [
        ({}, ["AZURE_SPEECH_KEY", "AZURE_SPEECH_REGION", "AZURE_SPEECH_RESOURCE_ID"]),
        ({"AZURE_SPEECH_KEY": "", "AZURE_SPEECH_REGION": "  "}, ["AZURE_SPEECH_KEY"]),
        ({"AZURE_SPEECH_KEY": KEY}, ["AZURE_SPEECH_REGION", "AZURE_SPEECH_ENDPOINT"]),
        ({"AZURE_SPEECH_REGION": REGION}, ["AZURE_SPEECH_KEY", "AZURE_SPEECH_RESOURCE_ID"]),
        ({"AZURE_SPEECH_ENDPOINT": ENDPOINT}, ["AZURE_SPEECH_KEY"]),
        ({"AZURE_SPEECH_RESOURCE_ID": RESOURCE_ID}, ["AZURE_SPEECH_REGION"]),
        ({"AZURE_SPEECH_KEY": KEY, "AZURE_SPEECH_REGION": "West Europe"}, ["AZURE_SPEECH_REGION"]),
        (
            {"AZURE_SPEECH_KEY": KEY, "AZURE_SPEECH_ENDPOINT": "my-speech.example.com"},
            ["AZURE_SPEECH_ENDPOINT", "https://"],
        ),
        (
            {"AZURE_SPEECH_RESOURCE_ID": "my-speech", "AZURE_SPEECH_REGION": REGION},
            ["AZURE_SPEECH_RESOURCE_ID", "/subscriptions/"],
        ),
    ],
)
def test_incomplete_credentials_name_the_variables(
    env: dict[str, str], must_name: list[str]
) -> None:
    with pytest.raises(ConfigError) as info:
        AzureSpeechSettings.from_env(env)
    message = str(info.value)
    assert "\n" not in message
    for name in must_name:
        assert name in message
    assert KEY not in message


def test_make_engine_builds_azure_and_rejects_unknown_names() -> None:
    engine = tts.make_engine(" Azure ", {"AZURE_SPEECH_KEY": KEY, "AZURE_SPEECH_REGION": REGION})
    assert isinstance(engine, AzureEngine)
    assert engine.name == "azure"
    assert engine.default_voice == DEFAULT_VOICE
    with pytest.raises(ConfigError, match="AZURE_SPEECH_REGION"):
        tts.make_engine("azure", {"AZURE_SPEECH_KEY": KEY})
    with pytest.raises(ConfigError, match=r"unknown TTS engine 'polly' \(allowed: espeak, azure\)"):
        tts.make_engine("polly", {})


def test_constructing_the_engine_does_not_load_the_sdk() -> None:
    """No SDK import, hence no network, until the first synthesis."""
    code = (
        "import sys\n"
        "from loadtest.audio.tts import make_engine\n"
        f"env = {{'AZURE_SPEECH_KEY': 'x', 'AZURE_SPEECH_REGION': '{REGION}'}}\n"
        "e = make_engine('azure', env)\n"
        "e.describe()\n"
        "print('azure.cognitiveservices.speech' in sys.modules, 'azure.identity' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.split() == ["False", "False"]


# --- secrets hygiene ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "env",
    [
        {"AZURE_SPEECH_KEY": KEY, "AZURE_SPEECH_REGION": REGION},
        {"AZURE_SPEECH_KEY": KEY, "AZURE_SPEECH_ENDPOINT": ENDPOINT + "?token=abc"},
    ],
)
def test_key_never_in_describe_or_repr(env: dict[str, str]) -> None:
    engine = AzureEngine.from_env(env)
    for text in (engine.describe(), repr(engine), repr(engine.settings), str(engine.settings)):
        assert KEY not in text
        assert "token=abc" not in text
        assert "\n" not in text
    assert "key auth" in engine.describe()
    assert DEFAULT_VOICE in engine.describe()


def test_describe_names_the_target() -> None:
    by_region = AzureEngine.from_env({"AZURE_SPEECH_KEY": KEY, "AZURE_SPEECH_REGION": REGION})
    assert REGION in by_region.describe()
    by_endpoint = AzureEngine.from_env({"AZURE_SPEECH_KEY": KEY, "AZURE_SPEECH_ENDPOINT": ENDPOINT})
    assert ENDPOINT in by_endpoint.describe()
    entra = AzureEngine.from_env(
        {"AZURE_SPEECH_RESOURCE_ID": RESOURCE_ID, "AZURE_SPEECH_REGION": REGION}
    )
    assert "Entra" in entra.describe()
    assert "my-speech" in entra.describe()


# --- Microsoft Entra ID -----------------------------------------------------------------------


class FakeCredential:
    """A TokenCredential that hands out numbered tokens, or fails."""

    def __init__(self, lifetime_s: int = 3600, error: Exception | None = None) -> None:
        self.lifetime_s = lifetime_s
        self.error = error
        self.scopes: list[tuple[str, ...]] = []

    def get_token(self, *scopes: str, **_kwargs: object) -> AccessToken:
        self.scopes.append(scopes)
        if self.error is not None:
            raise self.error
        return AccessToken(f"tok{len(self.scopes)}", int(time.time()) + self.lifetime_s)


def test_entra_token_has_the_documented_form_and_is_reused() -> None:
    credential = FakeCredential()
    provider = EntraTokenProvider(credential, RESOURCE_ID)
    now = time.time()
    first, refreshed = provider.auth_token(now)
    assert (first, refreshed) == (f"aad#{RESOURCE_ID}#tok1", True)
    assert credential.scopes == [(ENTRA_SCOPE,)]
    second, refreshed = provider.auth_token(now + 60)
    assert (second, refreshed) == (first, False)


def test_entra_token_is_refreshed_near_expiry() -> None:
    credential = FakeCredential(lifetime_s=3600)
    provider = EntraTokenProvider(credential, RESOURCE_ID, refresh_margin_s=300)
    now = time.time()
    provider.auth_token(now)
    token, refreshed = provider.auth_token(now + 3600 - 299)
    assert refreshed
    assert token.endswith("#tok2")


def test_credential_failure_is_a_tts_error_before_any_network() -> None:
    cause = ClientAuthenticationError("DefaultAzureCredential failed to retrieve a token.\nmore")
    engine = AzureEngine(
        AzureSpeechSettings.from_env(
            {"AZURE_SPEECH_RESOURCE_ID": RESOURCE_ID, "AZURE_SPEECH_REGION": REGION}
        ),
        credential=FakeCredential(error=cause),
    )
    with pytest.raises(TtsError, match="Microsoft Entra token") as info:
        engine.synthesize("Hello there")
    assert info.value.__cause__ is cause
    assert "\n" not in str(info.value)
    assert "ClientAuthenticationError" in str(info.value)


# --- SSML ------------------------------------------------------------------------------------


def parse(ssml: str) -> ET.Element:
    return ET.fromstring(ssml)


def test_ssml_escapes_text_and_keeps_it_exact() -> None:
    text = 'Tom & Jerry <b>say</b> "hi" > 3'
    ssml = build_ssml(text, voice=DEFAULT_VOICE)
    assert "<b>" not in ssml
    assert "&amp;" in ssml and "&lt;b&gt;" in ssml
    root = parse(ssml)
    prosody = root.find(f"{SSML_NS}voice/{SSML_NS}prosody")
    assert prosody is not None
    assert prosody.text == text
    assert list(prosody) == []


def test_ssml_structure_voice_and_language() -> None:
    root = parse(build_ssml("Hallo", voice="de-DE-KatjaNeural"))
    assert root.tag == f"{SSML_NS}speak"
    assert root.attrib["version"] == "1.0"
    assert root.attrib["{http://www.w3.org/XML/1998/namespace}lang"] == "de-DE"
    voice = root.find(f"{SSML_NS}voice")
    assert voice is not None and voice.attrib["name"] == "de-DE-KatjaNeural"
    default = parse(build_ssml("Hi", voice="CustomVoiceWithoutLocale"))
    assert default.attrib["{http://www.w3.org/XML/1998/namespace}lang"] == "en-US"


def test_ssml_attribute_values_are_escaped() -> None:
    root = parse(build_ssml("Hi", voice='en-US-"Odd"&<Voice>', style='a"b'))
    voice = root.find(f"{SSML_NS}voice")
    assert voice is not None and voice.attrib["name"] == 'en-US-"Odd"&<Voice>'
    express = root.find(f"{SSML_NS}voice/{MSTTS_NS}express-as")
    assert express is not None and express.attrib["style"] == 'a"b'


@pytest.mark.parametrize(
    ("rate", "percent"),
    [(1.0, "+0%"), (1.5, "+50%"), (0.5, "-50%"), (2.0, "+100%"), (1.25, "+25%"), (0.9, "-10%")],
)
def test_rate_becomes_prosody_percent(rate: float, percent: str) -> None:
    assert prosody_rate(rate) == percent
    root = parse(build_ssml("Hi", voice=DEFAULT_VOICE, rate=rate))
    prosody = root.find(f"{SSML_NS}voice/{SSML_NS}prosody")
    assert prosody is not None and prosody.attrib["rate"] == percent


def test_style_wraps_prosody_only_when_set() -> None:
    plain = parse(build_ssml("Hi", voice=DEFAULT_VOICE))
    assert plain.find(f".//{MSTTS_NS}express-as") is None
    assert "mstts:express-as" not in build_ssml("Hi", voice=DEFAULT_VOICE)
    styled = parse(build_ssml("Hi", voice=DEFAULT_VOICE, style="cheerful", rate=1.2))
    express = styled.find(f"{SSML_NS}voice/{MSTTS_NS}express-as")
    assert express is not None and express.attrib["style"] == "cheerful"
    prosody = express.find(f"{SSML_NS}prosody")
    assert prosody is not None and prosody.attrib["rate"] == "+20%" and prosody.text == "Hi"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"text": "   "}, "empty"),
        ({"text": "Hi", "rate": 0.49}, "rate"),
        ({"text": "Hi", "rate": 2.01}, "rate"),
        ({"text": "Hi", "rate": float("nan")}, "rate"),
        ({"text": "Hi", "voice": " "}, "voice"),
        ({"text": "Hi", "style": ""}, "style"),
    ],
)
def test_ssml_rejects_bad_requests(kwargs: dict[str, object], match: str) -> None:
    args: dict[str, object] = {"voice": DEFAULT_VOICE, **kwargs}
    with pytest.raises(ConfigError, match=match):
        build_ssml(**args)  # type: ignore[arg-type]


def test_synthesize_validates_before_touching_the_sdk() -> None:
    engine = AzureEngine.from_env({"AZURE_SPEECH_KEY": KEY, "AZURE_SPEECH_REGION": REGION})
    with pytest.raises(ConfigError, match="sample rate"):
        engine.synthesize("Hi", sample_rate=44100)
    with pytest.raises(ConfigError, match="empty"):
        engine.synthesize("")


# --- the real SDK against a closed local port --------------------------------------------------


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.mark.integration
def test_unreachable_endpoint_is_a_one_line_tts_error_without_the_key() -> None:
    endpoint = f"wss://127.0.0.1:{closed_port()}/cognitiveservices/websocket/v1"
    engine = tts.make_engine("azure", {"AZURE_SPEECH_KEY": KEY, "AZURE_SPEECH_ENDPOINT": endpoint})
    started = time.monotonic()
    with pytest.raises(TtsError) as info:
        engine.synthesize("Hi there, I have a quick question", sample_rate=8000)
    assert time.monotonic() - started < 10.0
    message = str(info.value)
    assert "\n" not in message
    assert KEY not in message
    assert "cancelled" in message
    assert "ConnectionFailure" in message
    with pytest.raises(TtsError):  # tts.test_connection reports the same failure
        tts.test_connection(engine)


@pytest.mark.integration
def test_entra_token_reaches_the_sdk_and_failure_is_one_line() -> None:
    """With a fake Entra token the service (or DNS, offline) refuses: a TtsError either way."""
    credential = FakeCredential()
    engine = AzureEngine(
        AzureSpeechSettings.from_env(
            {"AZURE_SPEECH_RESOURCE_ID": RESOURCE_ID, "AZURE_SPEECH_REGION": REGION}
        ),
        credential=credential,
    )
    started = time.monotonic()
    with pytest.raises(TtsError, match="cancelled") as info:
        engine.synthesize("Hi there", sample_rate=24000)
    assert time.monotonic() - started < 30.0
    assert credential.scopes == [(ENTRA_SCOPE,)]
    message = str(info.value)
    assert "\n" not in message
    assert f"aad#{RESOURCE_ID}#tok1" not in message
