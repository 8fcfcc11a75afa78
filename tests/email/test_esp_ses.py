"""EMAIL_TRANSPORT=ses: a bulletin through a real botocore sesv2 client, its HTTP layer intercepted (the request is
serialized and signed as for AWS, and answered here), and botocore's Stubber for the error replies."""

from __future__ import annotations

import base64
import email
import json
from collections.abc import Callable, Iterator
from email import policy
from typing import Any

import pytest

from publisher import pipeline
from publisher.channels.base import ChannelContext
from publisher.channels.email import EmailChannel
from publisher.delivery import DeliveryKey
from publisher.mail.esp import ses_client
from publisher.site import Site
from tests.email.conftest import publish, set_settings, story_for

SLUG = "2024-unpsf-incheon"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


@pytest.fixture
def ses_site(site: Site) -> Iterator[Site]:
    """The sample site sending through SES (credentials in .env), no pacing and no real backoff waits."""
    wired = set_settings(site, EMAIL_TRANSPORT="ses", SES_REGION="eu-west-1", SES_RATE_PER_SECOND="0",
                         SMTP_RETRY_DELAY="0", BULLETIN_FROM="UNPOG News <news@unpog.example>",
                         PUBLISHER_SITE_URL="https://news.unpog.example")
    (wired.root / ".env").write_text("PUBLISHER_SECRET_KEY=test-secret-key-for-signed-links\n"
                                     "AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE\n"
                                     f"AWS_SECRET_ACCESS_KEY={SECRET}\n", encoding="utf-8")
    wired = Site(wired.root)
    yield wired
    wired.close()


def add_readers(site: Site) -> None:
    subscribers = site.subscribers()
    for i in range(3):
        subscribers.add(f"reader{i}@example.org", name=f"Reader {i}", lang="en")
    subscribers.add("kim@example.kr", name="김독자", lang="ko")


class Body:
    """What botocore reads a response body from (``raw.stream()``)."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.data


class FakeSes:
    """Answers SendEmail requests at botocore's HTTP layer (``before-send``): nothing leaves the machine."""

    def __init__(self, answer: Callable[[dict[str, Any], bytes], tuple[int, dict[str, Any], dict[str, str]]]
                 | None = None) -> None:
        self.requests: list[Any] = []
        self.messages: dict[str, bytes] = {}
        self.answer = answer

    def __call__(self, request: Any, **_: Any) -> Any:
        from botocore.awsrequest import AWSResponse

        self.requests.append(request)
        body = json.loads(request.body)
        raw = base64.b64decode(body["Content"]["Raw"]["Data"])
        recipient = body["Destination"]["ToAddresses"][0]
        if self.answer is not None:
            status, payload, headers = self.answer(body, raw)
            if status != 200:
                return AWSResponse(request.url, status, headers, Body(json.dumps(payload).encode()))
        self.messages[recipient] = raw
        payload = {"MessageId": f"0102018f-ses-{len(self.messages):04d}"}
        return AWSResponse(request.url, 200, {"Content-Type": "application/json"}, Body(json.dumps(payload).encode()))


def intercepted(site: Site, fake: FakeSes) -> Any:
    """Our own SES client (as the transport makes it from the settings), with its HTTP sends answered by ``fake``."""
    client = ses_client("eu-west-1", {"AWS_ACCESS_KEY_ID": "AKIAIOSFODNN7EXAMPLE", "AWS_SECRET_ACCESS_KEY": SECRET})
    client.meta.events.register("before-send.sesv2.SendEmail", fake)
    return client


def test_a_bulletin_goes_through_ses_and_the_ledger_holds_the_provider_ids(ses_site: Site) -> None:
    add_readers(ses_site)
    fake = FakeSes()
    channel = EmailChannel(ses_site)
    channel.esp_client = intercepted(ses_site, fake)
    assert channel.is_configured() and channel.destination() == "SES eu-west-1 API"

    reports = publish(ses_site, story_for(ses_site, SLUG), channel=channel)

    assert {(r.lang, r.state, r.note) for r in reports} == {("en", "sent", "3 sent"), ("ko", "sent", "1 sent")}
    assert sorted(fake.messages) == ["kim@example.kr", "reader0@example.org", "reader1@example.org",
                                     "reader2@example.org"]
    # The request is SES v2 SendEmail, signed for the region with the settings' key, never anything else.
    request = fake.requests[0]
    assert request.url == "https://email.eu-west-1.amazonaws.com/v2/email/outbound-emails"
    authorization = request.headers["Authorization"].decode()
    assert "Credential=AKIAIOSFODNN7EXAMPLE/" in authorization and "/eu-west-1/ses/aws4_request" in authorization
    assert SECRET not in authorization
    # The raw MIME is ours: one recipient each, with their own List-Unsubscribe, signed-link headers kept.
    message = email.message_from_bytes(fake.messages["kim@example.kr"], policy=policy.default)
    assert message["To"].addresses[0].addr_spec == "kim@example.kr"
    assert message["Content-Language"] == "ko"
    assert message["List-Unsubscribe"].startswith("<https://news.unpog.example/")
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"

    ledger = ses_site.ledger()
    ids = {ledger.get(DeliveryKey(SLUG, lang, "email", address)).remote_id
           for lang, address in [("en", "reader0@example.org"), ("en", "reader1@example.org"),
                                 ("en", "reader2@example.org"), ("ko", "kim@example.kr")]}
    assert ids == {f"0102018f-ses-{n:04d}" for n in range(1, 5)}     # the provider's MessageIds
    row = ledger.get(DeliveryKey(SLUG, "ko", "email", "kim@example.kr"))
    assert row.state == "sent" and row.detail["message_id"] == message["Message-ID"]
    assert row.detail["provider"] == "SES"

    # Running again sends nothing.
    again = publish(ses_site, story_for(ses_site, SLUG), channel=channel)
    assert {r.note for r in again} == {"3 already sent", "1 already sent"}
    assert len(fake.requests) == 4


def test_dkim_signature_is_kept_in_the_raw_message(ses_site: Site, tmp_path: Any) -> None:
    import subprocess

    key = tmp_path / "dkim.pem"
    subprocess.run(["openssl", "genrsa", "-out", str(key), "2048"], check=True, capture_output=True)
    signed = set_settings(ses_site, DKIM_DOMAIN="unpog.example", DKIM_SELECTOR="news", DKIM_PRIVATE_KEY_FILE=key)
    signed.subscribers().add("reader@example.org", lang="en")
    fake = FakeSes()
    channel = EmailChannel(signed)
    channel.esp_client = intercepted(signed, fake)
    publish(signed, story_for(signed, SLUG), ["en"], channel=channel)
    import dkim

    public = subprocess.run(["openssl", "rsa", "-in", str(key), "-pubout", "-outform", "DER"], check=True,
                            capture_output=True).stdout
    record = b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)
    raw = fake.messages["reader@example.org"]
    assert raw.startswith(b"DKIM-Signature: ")
    # The signature SES receives verifies against the selector's key: nothing between us and SES changed it.
    assert dkim.verify(raw, dnsfunc=lambda name, timeout=5: record if name == b"news._domainkey.unpog.example." else None)
    signed.close()


def throttled_then(status: int, code: str, message: str, times: int) -> Any:
    """An answer: ``times`` errors (``code``), then success."""
    seen = [0]

    def answer(body: dict[str, Any], raw: bytes) -> tuple[int, dict[str, Any], dict[str, str]]:
        seen[0] += 1
        if seen[0] <= times:
            return status, {"message": message}, {"x-amzn-ErrorType": f"{code}:http://internal.amazon.com/",
                                                  "Content-Type": "application/json"}
        return 200, {}, {}

    return answer


def test_throttling_is_retried_with_the_backoff_through_the_injected_sleep(ses_site: Site) -> None:
    site = set_settings(ses_site, SES_CONNECTIONS="1", SMTP_RETRY_DELAY="5", SMTP_RETRIES="3")
    site.subscribers().add("reader@example.org", lang="en")
    fake = FakeSes(throttled_then(429, "TooManyRequestsException", "Maximum sending rate exceeded.", 2))
    channel = EmailChannel(site)
    channel.esp_client = intercepted(site, fake)
    waits: list[float] = []
    ctx = ChannelContext(audience=site.subscribers(), sleep=waits.append)
    renditions = channel.render(story_for(site, SLUG), ["en"])

    results = pipeline.send_all(site, channel, renditions, ctx)

    assert [r.outcome.state for r in results if r.outcome] == ["sent"]
    assert waits == [5.0, 10.0]                          # no real waiting
    assert len(fake.requests) == 3 and list(fake.messages) == ["reader@example.org"]
    row = site.ledger().get(DeliveryKey(SLUG, "en", "email", "reader@example.org"))
    assert row.state == "sent" and row.detail["attempts"] == 3
    site.close()


def test_a_paused_account_halts_the_run_with_the_rest_pending(ses_site: Site) -> None:
    from botocore.stub import Stubber

    site = set_settings(ses_site, SES_CONNECTIONS="1")
    add_readers(site)
    client = ses_client("eu-west-1", {"AWS_ACCESS_KEY_ID": "AKIAIOSFODNN7EXAMPLE", "AWS_SECRET_ACCESS_KEY": SECRET})
    stub = Stubber(client)
    stub.add_response("send_email", {"MessageId": "first-id"})
    stub.add_client_error("send_email", service_error_code="SendingPausedException", http_status_code=400,
                          service_message="Sending is paused for this account.")
    channel = EmailChannel(site)
    channel.esp_client = client
    with stub:
        reports = publish(site, story_for(site, SLUG), channel=channel)
    stopped = [r for r in reports if r.state == "stopped"]
    assert len(stopped) == 1 and "SendingPausedException: Sending is paused" in stopped[0].note
    ledger = site.ledger()
    states = sorted(ledger.get(DeliveryKey(SLUG, lang, "email", address)).state
                    for lang, address in [("en", "reader0@example.org"), ("en", "reader1@example.org"),
                                          ("en", "reader2@example.org"), ("ko", "kim@example.kr")])
    assert states == ["pending", "pending", "pending", "sent"]   # nothing failed: a later run sends the rest
    stub.assert_no_pending_responses()

    # The account is back: the next run sends only to those still waiting.
    stub = Stubber(client)
    for n in range(3):
        stub.add_response("send_email", {"MessageId": f"later-{n}"})
    with stub:
        again = publish(site, story_for(site, SLUG), channel=channel)
    assert not [r for r in again if r.state == "stopped"]
    stub.assert_no_pending_responses()
    site.close()


@pytest.mark.parametrize(("code", "message", "kind"), [
    ("TooManyRequestsException", "Maximum sending rate exceeded.", "retry"),
    ("Throttling", "Daily message quota exceeded.", "halt"),
    ("LimitExceededException", "Quota exceeded", "halt"),
    ("MailFromDomainNotVerifiedException", "MAIL FROM domain not verified", "halt"),
    ("AccountSuspendedException", "suspended", "halt"),
    ("MessageRejected", "Email address is not verified. The following identities failed the check", "halt"),
    ("MessageRejected", "Illegal address", "failed"),
    ("BadRequestException", "Missing final '@domain'", "failed"),
    ("InternalFailure", "", "retry"),
])
def test_ses_error_codes(code: str, message: str, kind: str) -> None:
    from publisher.mail.esp import ses_verdict

    status = 500 if code == "InternalFailure" else 400
    verdict = ses_verdict({"Error": {"Code": code, "Message": message},
                           "ResponseMetadata": {"HTTPStatusCode": status}})
    assert verdict.kind == kind


def test_a_read_timeout_leaves_the_row_unconfirmed_and_the_next_run_resends_it(ses_site: Site) -> None:
    from botocore.exceptions import ReadTimeoutError

    site = set_settings(ses_site, SES_CONNECTIONS="1")
    site.subscribers().add("reader@example.org", lang="en")
    fake = FakeSes()
    calls = [0]

    def timeout_once(request: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        if calls[0] == 1:
            raise ReadTimeoutError(endpoint_url=request.url)
        return fake(request, **kwargs)

    client = ses_client("eu-west-1", {"AWS_ACCESS_KEY_ID": "AKIAIOSFODNN7EXAMPLE", "AWS_SECRET_ACCESS_KEY": SECRET})
    client.meta.events.register("before-send.sesv2.SendEmail", timeout_once)
    channel = EmailChannel(site)
    channel.esp_client = client
    key = DeliveryKey(SLUG, "en", "email", "reader@example.org")

    first = publish(site, story_for(site, SLUG), ["en"], channel=channel)
    assert [r.state for r in first] == ["unconfirmed"]
    assert "SES did not answer" in first[0].note
    assert site.ledger().get(key).state == "unconfirmed"
    assert calls[0] == 1                                  # not retried blindly within the run

    second = publish(site, story_for(site, SLUG), ["en"], channel=channel)
    assert [r.state for r in second] == ["sent"] and second[0].possible_duplicates == 1
    row = site.ledger().get(key)
    assert row.state == "sent" and row.remote_id == "0102018f-ses-0001" and row.detail["possible_duplicate"]
    site.close()


def test_config_check_names_the_missing_ses_setting_and_never_prints_secrets(cli: Any, site_dir: Any) -> None:
    toml = site_dir / "publisher.toml"
    toml.write_text(toml.read_text(encoding="utf-8") + 'EMAIL_TRANSPORT = "ses"\nSES_REGION = "eu-west-1"\n',
                    encoding="utf-8")
    (site_dir / ".env").write_text(f"AWS_SECRET_ACCESS_KEY={SECRET}\n", encoding="utf-8")
    result = cli("config", "check")
    assert result.exit_code == 2
    assert "AWS_ACCESS_KEY_ID: needed with EMAIL_TRANSPORT=ses" in result.output
    assert SECRET not in result.output
    (site_dir / ".env").write_text(f"AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE\nAWS_SECRET_ACCESS_KEY={SECRET}\n",
                                   encoding="utf-8")
    result = cli("config", "check")
    assert "SES eu-west-1 API" in result.output and SECRET not in result.output


def test_a_publish_with_ses_half_configured_stops_before_anything_is_written(cli: Any, site_dir: Any) -> None:
    toml = site_dir / "publisher.toml"
    toml.write_text(toml.read_text(encoding="utf-8") + 'EMAIL_TRANSPORT = "ses"\n', encoding="utf-8")
    result = cli("publish", "--channel", "email", f"content/{SLUG}.en.md")
    assert result.exit_code == 2
    assert "SES_REGION: needed with EMAIL_TRANSPORT=ses" in result.output
    assert not (site_dir / "outbox").exists()


def test_a_confirmation_goes_through_ses(ses_site: Site) -> None:
    from publisher.mail.send import confirmation_message, send_message

    subscriber = ses_site.subscribers().add("new@example.org", lang="en", status="pending")
    fake = FakeSes()
    where = send_message(ses_site, confirmation_message(ses_site, subscriber), esp_client=intercepted(ses_site, fake))
    assert where == "SES eu-west-1 0102018f-ses-0001"
    message = email.message_from_bytes(fake.messages["new@example.org"], policy=policy.default)
    assert "/confirm" in message.get_body(("plain",)).get_content()


def test_the_request_carries_the_configuration_set_and_the_envelope_sender(ses_site: Site) -> None:
    from botocore.stub import ANY, Stubber

    site = set_settings(ses_site, SES_CONFIGURATION_SET="bulletins", SES_CONNECTIONS="1")
    site.subscribers().add("reader@example.org", lang="en")
    client = ses_client("eu-west-1", {"AWS_ACCESS_KEY_ID": "AKIAIOSFODNN7EXAMPLE", "AWS_SECRET_ACCESS_KEY": SECRET})
    stub = Stubber(client)
    stub.add_response("send_email", {"MessageId": "with-set"}, expected_params={
        "Content": {"Raw": {"Data": ANY}}, "Destination": {"ToAddresses": ["reader@example.org"]},
        "FeedbackForwardingEmailAddress": "news@unpog.example", "ConfigurationSetName": "bulletins"})
    channel = EmailChannel(site)
    channel.esp_client = client
    with stub:
        reports = publish(site, story_for(site, SLUG), ["en"], channel=channel)
    stub.assert_no_pending_responses()
    assert [(r.state, r.note) for r in reports] == [("sent", "1 sent")]
    assert site.ledger().get(DeliveryKey(SLUG, "en", "email", "reader@example.org")).remote_id == "with-set"
    site.close()


def test_ses_rate_paces_the_sending_through_the_injected_clock(ses_site: Site) -> None:
    site = set_settings(ses_site, SES_RATE_PER_SECOND="20")
    add_readers(site)
    fake = FakeSes()
    channel = EmailChannel(site)
    channel.esp_client = intercepted(site, fake)
    now = [1000.0]
    waits: list[float] = []

    def sleep(seconds: float) -> None:   # time passes only when the sender waits
        waits.append(seconds)
        now[0] += seconds

    ctx = ChannelContext(audience=site.subscribers(), clock=lambda: now[0], sleep=sleep)
    renditions = channel.render(story_for(site, SLUG), ["en", "ko"])
    results = pipeline.send_all(site, channel, renditions, ctx)
    assert [r.outcome.state for r in results if r.outcome] == ["sent"] * 4
    assert len(waits) == 3 and now[0] - 1000.0 >= 3 / 20 - 1e-9     # 4 messages at 20/s: 3 gaps of 50 ms
    site.close()


def test_a_region_that_is_not_one_is_a_config_error(cli: Any, site_dir: Any) -> None:
    toml = site_dir / "publisher.toml"
    toml.write_text(toml.read_text(encoding="utf-8") + 'EMAIL_TRANSPORT = "ses"\nSES_REGION = "eu west"\n',
                    encoding="utf-8")
    result = cli("config", "check")
    assert result.exit_code == 2
    assert "SES_REGION (from publisher.toml): expected an AWS region such as eu-west-1, got 'eu west'" in result.output
