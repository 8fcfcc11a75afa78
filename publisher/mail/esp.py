"""Email service providers' HTTP APIs as transports of the email channel: Amazon SES v2, Postmark and Mailgun.

Each is the SMTP sender's interface (``capacity``, ``submit``, ``next_outcome``; see ``channels/email.py``) over
a few worker threads. The sender records nothing: the pipeline claims each delivery before ``submit`` and marks
it from the outcome, with the provider's accepted id as the row's ``remote_id`` (our own Message-ID stays in the
row's detail). ``capacity`` (workers x batch size) bounds how many deliveries a crash can leave in doubt.

What an answer means, for every provider:
  * accepted (an id): ``sent``;
  * throttled (HTTP 429, SES ``TooManyRequestsException``/``Throttling``) or the service briefly unavailable (5xx,
    a connection refused before the request left): tried again after the backoff of ``SMTP_RETRIES`` /
    ``SMTP_RETRY_DELAY`` (through the injected ``sleep``); still refused after the last try, the transport halts
    (the service, not the reader, is the problem): that job and every later one are ``pending`` with ``halt``;
  * refused for the account or sender (sending paused, a quota, an unverified sender or MAIL FROM domain, a bad
    token): the same answer awaits every recipient, so the transport halts the same way at once;
  * refused for this recipient or message (an invalid address, an address the provider suppresses): ``failed``
    with ``permanent`` (Postmark's "inactive recipient" also marks the address ``bounced``);
  * no answer after the request left (a read timeout, the connection dropped): ``unconfirmed``, never retried
    within the run; the email channel resends such rows on the next run and reports them as possible duplicates.

Mailgun is called once per recipient on ``messages.mime`` rather than through its batch API with
recipient-variables: the batch API builds the messages itself from %recipient.x% placeholders, which cannot carry
our per-reader signed links inside an encoded body nor our DKIM signature, and returns one id for the whole batch
where the ledger keeps one per delivery. SES also takes one message per call (``SendEmail`` with raw MIME).
Postmark's ``/email/batch`` takes up to 500 messages it builds from JSON fields (see ``postmark_message``).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from publisher.mail.smtp import RetryPolicy, SendJob, SendOutcome

if TYPE_CHECKING:
    import httpx

    from publisher.config import Config

Build = Callable[[SendJob], tuple[bytes, str]]

#: SES error codes that mean "slow down": retried after the backoff.
SES_THROTTLING = ("TooManyRequestsException", "Throttling", "ThrottlingException", "RequestThrottled",
                  "SlowDown")
#: SES error codes about the account, the sender or our credentials: every recipient would get the same.
SES_ACCOUNT = ("AccountSendingPausedException", "SendingPausedException", "AccountSuspendedException",
               "MailFromDomainNotVerifiedException", "LimitExceededException", "NotFoundException",
               "AccessDeniedException", "AccessDenied", "UnrecognizedClientException", "InvalidClientTokenId",
               "SignatureDoesNotMatch", "ExpiredTokenException", "InvalidSignatureException",
               "MissingAuthenticationTokenException", "ConfigurationSetDoesNotExistException")
#: Postmark ErrorCodes about the account or sender (a bad token, an unconfirmed sender signature, no credits,
#: an account pending approval, an unknown message stream).
POSTMARK_ACCOUNT = (10, 400, 401, 405, 412, 1235)
#: Postmark ErrorCode 406: the recipient is inactive (Postmark suppressed it after a hard bounce or complaint).
POSTMARK_INACTIVE = 406
#: Headers Postmark writes itself from the JSON fields (or refuses as custom headers): not passed on.
POSTMARK_OWN_HEADERS = ("from", "to", "cc", "bcc", "subject", "reply-to", "date", "message-id", "mime-version",
                        "content-type", "content-transfer-encoding", "content-language", "dkim-signature",
                        "return-path")


@dataclass(eq=False)
class EspOutcome(SendOutcome):
    """A ``SendOutcome`` with the provider's accepted id (the ledger's ``remote_id``) besides our Message-ID."""

    remote_id: str | None = None
    provider: str = ""


@dataclass(frozen=True)
class Verdict:
    """What a provider's answer means for one job: sent, failed, bounced, retry, halt or unconfirmed."""

    kind: str
    text: str = ""
    remote_id: str | None = None
    code: int | None = None


@dataclass(eq=False)
class _Item:
    job: SendJob
    data: bytes
    message_id: str
    attempts: int = 0


@dataclass
class EspTransport:
    """The common part: worker threads, batches of ``batch_size`` jobs, the retry ladder and the halt.

    ``submit`` never blocks: a job joins the open batch, which goes to a worker when full, or when the caller
    waits for an outcome (``next_outcome`` with a timeout other than 0) and none is ready.
    """

    build: Build
    workers: int = 4
    batch_size: int = 1
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    sleep: Callable[[float], None] = time.sleep
    timeout: float = 30.0

    provider: ClassVar[str] = "ESP"

    def __post_init__(self) -> None:
        self.capacity = max(1, self.workers) * max(1, self.batch_size)
        self._batch: list[SendJob] = []
        self._outcomes: queue.Queue[SendOutcome | BaseException] = queue.Queue()
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self._halted: str | None = None
        self._stopping = False

    @property
    def halted(self) -> str | None:
        """Why the transport stopped sending (the run's one line), or None while it sends."""
        return self._halted

    def describe(self) -> str:
        return self.provider

    # -- the caller's thread ---------------------------------------------------------------------------------

    def __enter__(self) -> EspTransport:
        self._open()
        self._pool = ThreadPoolExecutor(max(1, self.workers), thread_name_prefix=f"{self.provider.lower()}-send")
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopping = True
        if self._pool is not None:
            # Batches not started were never sent: dropped (their rows stay claimed; the next run resends them).
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        self._close()

    def submit(self, job: SendJob) -> None:
        assert self._pool is not None, "submit() outside `with`"
        self._batch.append(job)
        if len(self._batch) >= self.batch_size:
            self._dispatch()

    def next_outcome(self, timeout: float | None = None) -> SendOutcome | None:
        """The next outcome, or None after ``timeout`` seconds; re-raises a worker's unexpected error."""
        if timeout != 0 and self._batch and self._outcomes.empty():
            self._dispatch()   # the caller waits: the open batch will not fill any further for now
        try:
            item = self._outcomes.get(block=timeout != 0, timeout=timeout or None)
        except queue.Empty:
            return None
        if isinstance(item, BaseException):
            raise item
        return item

    def _dispatch(self) -> None:
        assert self._pool is not None
        batch, self._batch = self._batch, []
        if batch:
            self._pool.submit(self._run, batch)

    # -- the workers' threads --------------------------------------------------------------------------------

    def _run(self, jobs: Sequence[SendJob]) -> None:
        try:
            todo: list[_Item] = []
            for job in jobs:
                if self._halted is not None:
                    self._pending(job)
                    continue
                data, message_id = self.build(job)
                todo.append(_Item(job, data, message_id))
            while todo:
                if self._halted is not None:   # halted by another worker while this batch waited
                    for item in todo:
                        self._pending(item.job, item)
                    return
                for item in todo:
                    item.attempts += 1
                verdicts = self._call(todo)
                again = []
                for item, verdict in zip(todo, verdicts, strict=True):
                    if verdict.kind == "retry":
                        again.append((item, verdict))
                    else:
                        self._emit(item, verdict)
                if not again:
                    return
                tries = again[0][0].attempts
                if tries > self.retry.retries or self._stopping:
                    self._halt(f"{self.provider} still refused after {tries} tries: {again[0][1].text}")
                    for item, verdict in again:
                        self._pending(item.job, item, verdict.code)
                    return
                self.sleep(self.retry.delay(tries))
                todo = [item for item, _ in again]
        except BaseException as error:   # a bug must surface in the caller, not vanish with the worker
            self._outcomes.put(error)

    def _emit(self, item: _Item, verdict: Verdict) -> None:
        job = item.job
        common: dict[str, Any] = {"attempts": item.attempts, "provider": self.provider, "code": verdict.code}
        if verdict.kind == "sent":
            self._outcomes.put(EspOutcome(job, "sent", message_id=item.message_id, remote_id=verdict.remote_id,
                                          **common))
        elif verdict.kind in ("failed", "bounced"):
            self._outcomes.put(EspOutcome(job, "failed", message_id=item.message_id, error=verdict.text,
                                          permanent=True, bounced=verdict.kind == "bounced", **common))
        elif verdict.kind == "unconfirmed":
            self._outcomes.put(EspOutcome(job, "unconfirmed", message_id=item.message_id, error=verdict.text,
                                          **common))
        else:
            assert verdict.kind == "halt", verdict
            self._halt(f"{self.provider} refused the sender: {verdict.text}")
            self._pending(job, item, verdict.code)

    def _halt(self, reason: str) -> None:
        with self._lock:
            if self._halted is None:
                self._halted = reason

    def _pending(self, job: SendJob, item: _Item | None = None, code: int | None = None) -> None:
        self._outcomes.put(EspOutcome(job, "pending", message_id=item.message_id if item else None,
                                      error=self._halted, code=code, halt=True,
                                      attempts=item.attempts if item else 0, provider=self.provider))

    # -- what each provider implements ------------------------------------------------------------------------

    def _open(self) -> None:
        """Make the API client (on the caller's thread, before any job)."""

    def _close(self) -> None:
        """Close the API client."""

    def _call(self, items: Sequence[_Item]) -> list[Verdict]:
        """Send ``items`` (one batch) and say what became of each, in order. Raises nothing for a remote failure."""
        raise NotImplementedError


# --- Amazon SES v2 ------------------------------------------------------------------------------------------------


@dataclass
class SesTransport(EspTransport):
    """``SendEmail`` with the raw MIME (our headers, DKIM signature and List-Unsubscribe kept), one per recipient.

    ``client`` is a boto3 ``sesv2`` client; without one it is made from the settings' credentials (never from a
    shared credentials file). ``FeedbackForwardingEmailAddress`` is the job's envelope sender (the bounce address
    with VERP when configured): SES writes its own Return-Path, and forwards bounces and complaints there.
    """

    region: str = "us-east-1"
    credentials: dict[str, str | None] = field(default_factory=dict, repr=False)   # secrets: never in a repr
    configuration_set: str | None = None
    client: Any = None

    provider: ClassVar[str] = "SES"

    def describe(self) -> str:
        return f"SES {self.region}"

    def _open(self) -> None:
        if self.client is None:
            from botocore.exceptions import BotoCoreError

            from publisher.errors import ChannelError

            try:
                self.client = ses_client(self.region, self.credentials, timeout=self.timeout, pool=self.workers)
            except BotoCoreError as error:   # e.g. a region botocore cannot make an endpoint for
                raise ChannelError(f"SES {self.region}: {_one_line(error)}") from None

    def _call(self, items: Sequence[_Item]) -> list[Verdict]:
        return [self._send(item) for item in items]

    def _send(self, item: _Item) -> Verdict:
        from botocore.exceptions import (BotoCoreError, ClientError, ConnectionClosedError, ConnectTimeoutError,
                                         EndpointConnectionError, ReadTimeoutError)

        params: dict[str, Any] = {"Content": {"Raw": {"Data": item.data}},
                                  "Destination": {"ToAddresses": [item.job.recipient]},
                                  "FeedbackForwardingEmailAddress": item.job.sender}
        if self.configuration_set:
            params["ConfigurationSetName"] = self.configuration_set
        try:
            answer = self.client.send_email(**params)
        except ClientError as error:
            return ses_verdict(error.response)
        except (ConnectTimeoutError, EndpointConnectionError) as error:   # the request never left
            return Verdict("retry", f"cannot reach SES: {error}")
        except (ReadTimeoutError, ConnectionClosedError) as error:
            return Verdict("unconfirmed", f"SES did not answer ({error}); the message may have been sent")
        except BotoCoreError as error:   # no credentials, a bad region: nobody's message would fare better
            return Verdict("halt", str(error))
        return Verdict("sent", remote_id=str(answer["MessageId"]))


def ses_verdict(response: dict[str, Any]) -> Verdict:
    """What an SES error response means for the job (see the module docstring)."""
    error = response.get("Error", {})
    code = str(error.get("Code", ""))
    message = " ".join(str(error.get("Message", "")).split())
    status = int(response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
    text = f"{code}: {message}" if message else code
    lowered = message.lower()
    if code in SES_THROTTLING or status == 429:
        # "Daily message quota exceeded" comes as Throttling too: a quota, not a rate, so waiting will not do.
        if "daily" in lowered or "quota" in lowered:
            return Verdict("halt", text, code=status or None)
        return Verdict("retry", text, code=status or None)
    if code in SES_ACCOUNT or status in (401, 403):
        return Verdict("halt", text, code=status or None)
    if code == "MessageRejected" and "not verified" in lowered:
        # The sandbox (or an unverified From identity): every other recipient would be refused the same way.
        return Verdict("halt", text, code=status or None)
    if code in ("MessageRejected", "BadRequestException", "InvalidParameterValue"):
        return Verdict("failed", text, code=status or None)
    if status >= 500 or code in ("InternalFailure", "ServiceUnavailable", "InternalServerError"):
        return Verdict("retry", text, code=status or None)
    return Verdict("halt", text, code=status or None)   # an error we do not know: do not repeat it 10,000 times


def ses_client(region: str, credentials: dict[str, str | None], *, timeout: float = 30.0, pool: int = 10) -> Any:
    """A boto3 ``sesv2`` client with these credentials, botocore's own retries off (ours use the injected sleep)."""
    import boto3
    from botocore.config import Config as BotoConfig

    session = boto3.session.Session(aws_access_key_id=credentials.get("AWS_ACCESS_KEY_ID"),
                                    aws_secret_access_key=credentials.get("AWS_SECRET_ACCESS_KEY"),
                                    aws_session_token=credentials.get("AWS_SESSION_TOKEN"), region_name=region)
    return session.client("sesv2", config=BotoConfig(connect_timeout=timeout, read_timeout=timeout,
                                                     retries={"total_max_attempts": 1},
                                                     max_pool_connections=max(1, pool)))


# --- HTTP APIs through httpx (Postmark, Mailgun) -----------------------------------------------------------------


@dataclass
class _HttpTransport(EspTransport):
    """An ``httpx.Client`` per session; ``http`` replaces its network transport (tests: ``httpx.MockTransport``)."""

    http: httpx.BaseTransport | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        self._client: httpx.Client | None = None

    def _client_options(self) -> dict[str, Any]:
        return {}

    def _open(self) -> None:
        import httpx

        limits = httpx.Limits(max_connections=max(1, self.workers))
        self._client = httpx.Client(transport=self.http, timeout=httpx.Timeout(self.timeout), limits=limits,
                                    follow_redirects=False, **self._client_options())

    def _close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def _post(self, url: str, count: int, **kwargs: Any) -> httpx.Response | list[Verdict]:
        """The response, or one verdict per job when no answer came (retry: never left; unconfirmed: it may
        have been accepted)."""
        import httpx

        assert self._client is not None
        try:
            return self._client.post(url, **kwargs)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.WriteError,
                httpx.WriteTimeout) as error:   # the request was not (wholly) sent: nothing can have been accepted
            return [Verdict("retry", f"cannot reach {self.provider}: {_one_line(error)}")] * count
        except httpx.TransportError as error:   # read timeout, connection dropped after the request went
            return [Verdict("unconfirmed", f"{self.provider} did not answer ({_one_line(error) or 'timeout'}); "
                                           "the message may have been sent")] * count


@dataclass
class PostmarkTransport(_HttpTransport):
    """``POST /email/batch``, up to ``batch_size`` (500) messages a call, to the broadcast ``stream``.

    Postmark builds each message from JSON fields (``postmark_message``): our From, To, Subject, Reply-To, both
    bodies and our List-Unsubscribe, List-Unsubscribe-Post and List-Id headers are kept; our DKIM signature,
    Message-ID and envelope sender are not (Postmark signs with the domain's DKIM key it holds and bounces to its
    own Return-Path).
    """

    token: str = field(default="", repr=False)   # a secret: never in a repr
    stream: str = "broadcast"
    url: str = "https://api.postmarkapp.com/email/batch"

    provider: ClassVar[str] = "Postmark"

    def describe(self) -> str:
        return f"Postmark ({self.stream} stream)"

    def _client_options(self) -> dict[str, Any]:
        return {"headers": {"X-Postmark-Server-Token": self.token, "Accept": "application/json"}}

    def _call(self, items: Sequence[_Item]) -> list[Verdict]:
        body = [postmark_message(item.data, self.stream) for item in items]
        response = self._post(self.url, len(items), json=body)
        if isinstance(response, list):
            return response
        status = response.status_code
        if status == 429 or status >= 500:
            return [Verdict("retry", f"HTTP {status}: {_short(response.text)}", code=status)] * len(items)
        if status != 200:   # the whole call refused: a bad token (401), an invalid request (422)...
            return [Verdict("halt", f"HTTP {status}: {_postmark_error(response)}", code=status)] * len(items)
        try:
            answers = response.json()
        except ValueError:
            answers = None
        if not isinstance(answers, list) or len(answers) != len(items):
            return [Verdict("unconfirmed", "Postmark answered 200 with a body that lists no result per "
                                           "message; the messages may have been sent")] * len(items)
        return [postmark_verdict(answer) for answer in answers]


def postmark_verdict(answer: Any) -> Verdict:
    """What one entry of Postmark's batch answer means (``ErrorCode`` 0 is accepted)."""
    if not isinstance(answer, dict):
        return Verdict("unconfirmed", f"Postmark answered {answer!r} for this message")
    code = answer.get("ErrorCode")
    text = f"Postmark {code}: {' '.join(str(answer.get('Message', '')).split())}"
    if code == 0 and answer.get("MessageID"):
        return Verdict("sent", remote_id=str(answer["MessageID"]))
    if code == POSTMARK_INACTIVE:
        return Verdict("bounced", text, code=code)
    if code == 429:
        return Verdict("retry", text, code=code)
    if code in POSTMARK_ACCOUNT:
        return Verdict("halt", text, code=code)
    return Verdict("failed", text, code=code if isinstance(code, int) else None)


def postmark_message(data: bytes, stream: str) -> dict[str, Any]:
    """One message of a batch call, from our MIME: the fields Postmark builds the message from, and our
    headers it does not write itself (List-Unsubscribe and List-Unsubscribe-Post for RFC 8058, List-Id...)."""
    import email
    from email import policy as email_policy
    from email.message import EmailMessage

    message = email.message_from_bytes(data, policy=email_policy.default)
    assert isinstance(message, EmailMessage)
    fields: dict[str, Any] = {"From": str(message["From"]), "To": str(message["To"]),
                              "Subject": str(message["Subject"] or ""), "MessageStream": stream}
    if message["Reply-To"]:
        fields["ReplyTo"] = str(message["Reply-To"])
    for subtype, name in (("html", "HtmlBody"), ("plain", "TextBody")):
        part = message.get_body((subtype,))
        if isinstance(part, EmailMessage):
            fields[name] = part.get_content().replace("\r\n", "\n")   # the wire's CRLF; Postmark writes its own
    fields["Headers"] = [{"Name": name, "Value": " ".join(str(value).split())}
                         for name, value in message.items() if name.lower() not in POSTMARK_OWN_HEADERS]
    return fields


def _postmark_error(response: httpx.Response) -> str:
    return _answer_error(response, "Message", code_field="ErrorCode")


@dataclass
class MailgunTransport(_HttpTransport):
    """``POST /v3/<domain>/messages.mime``, one call per recipient with our whole MIME message (headers, DKIM
    signature and List-Unsubscribe kept). Mailgun writes its own envelope sender (its own VERP address on the
    sending domain) and reports bounces through its webhooks."""

    api_key: str = field(default="", repr=False)   # a secret: never in a repr
    domain: str = ""
    api_url: str = "https://api.mailgun.net"

    provider: ClassVar[str] = "Mailgun"

    def describe(self) -> str:
        return f"Mailgun {self.domain}"

    def _client_options(self) -> dict[str, Any]:
        import httpx

        return {"auth": httpx.BasicAuth("api", self.api_key)}

    def _call(self, items: Sequence[_Item]) -> list[Verdict]:
        return [self._send(item) for item in items]

    def _send(self, item: _Item) -> Verdict:
        url = f"{self.api_url}/v3/{self.domain}/messages.mime"
        response = self._post(url, 1, data={"to": item.job.recipient},
                              files={"message": ("message.eml", item.data, "message/rfc822")})
        if isinstance(response, list):
            return response[0]
        status = response.status_code
        text = f"HTTP {status}: {_mailgun_error(response)}"
        if status == 200:
            try:
                remote_id = response.json().get("id")
            except (ValueError, AttributeError):
                remote_id = None
            if not remote_id:
                return Verdict("unconfirmed", "Mailgun answered 200 without an id; the message may have been sent")
            return Verdict("sent", remote_id=str(remote_id))
        if status == 429 or status >= 500:
            return Verdict("retry", text, code=status)
        if status in (400, 413):   # this message or address ("'to' parameter is not a valid address")
            return Verdict("failed", text, code=status)
        return Verdict("halt", text, code=status)   # 401 bad key, 402/403 account, 404 unknown domain


def _mailgun_error(response: httpx.Response) -> str:
    return _answer_error(response, "message")


def _answer_error(response: httpx.Response, field: str, *, code_field: str | None = None) -> str:
    """The error a provider's JSON answer gives in ``field`` (after its ``code_field``, if named), on one line;
    else the body, shortened."""
    try:
        found = response.json()
    except ValueError:
        return _short(response.text)
    if isinstance(found, dict) and field in found:
        message = " ".join(str(found[field]).split())
        return f"{found.get(code_field)} {message}" if code_field is not None else message
    return _short(response.text)


# --- choosing one ----------------------------------------------------------------------------------------------


def transport_name(config: Config) -> str:
    """EMAIL_TRANSPORT: smtp, ses, postmark or mailgun."""
    from publisher.mail.settings import EMAIL_TRANSPORT

    return str(config.get(EMAIL_TRANSPORT))


def missing_for(config: Config, name: str) -> list[str]:
    """The settings the provider ``name`` cannot send without that are not set."""
    from publisher.mail.settings import ESP_REQUIRED

    return [setting for setting in ESP_REQUIRED.get(name, ()) if not config.is_set(setting)]


def esp_rate(config: Config, name: str) -> float:
    """The provider's messages-per-second setting (0: no pacing)."""
    from publisher.mail.settings import MAILGUN_RATE_PER_SECOND, POSTMARK_RATE_PER_SECOND, SES_RATE_PER_SECOND

    setting = {"ses": SES_RATE_PER_SECOND, "postmark": POSTMARK_RATE_PER_SECOND,
               "mailgun": MAILGUN_RATE_PER_SECOND}[name]
    return float(config.get(setting) or 0)


def esp_describe(config: Config, name: str) -> str:
    """Where mail goes through provider ``name``, for ``config check`` and the report (no secret in it)."""
    from publisher.mail.settings import MAILGUN_DOMAIN, POSTMARK_MESSAGE_STREAM, SES_REGION

    if name == "ses":
        return f"SES {config.raw(SES_REGION.name)}"
    if name == "postmark":
        return f"Postmark ({config.get(POSTMARK_MESSAGE_STREAM)} stream)"
    return f"Mailgun {config.raw(MAILGUN_DOMAIN.name)}"


def esp_transport(config: Config, name: str, build: Build, *, sleep: Callable[[float], None] = time.sleep,
                  client: Any = None, transactional: bool = False) -> EspTransport:
    """The transport for provider ``name`` from the settings. ``client`` replaces what talks to the network: a
    boto3 ``sesv2`` client for SES (tests: with botocore's Stubber), an ``httpx`` transport for the others.
    ``transactional``: one-off mail (a confirmation), sent to Postmark's transactional stream."""
    from publisher.mail import settings as s
    from publisher.mail.smtp import retry_policy

    common: dict[str, Any] = {"build": build, "retry": retry_policy(config), "sleep": sleep,
                              "timeout": float(config.get(s.ESP_TIMEOUT))}
    if name == "ses":
        credentials = {setting.name: config.get(setting) or None
                       for setting in (s.AWS_ACCESS_KEY_ID, s.AWS_SECRET_ACCESS_KEY, s.AWS_SESSION_TOKEN)}
        return SesTransport(workers=int(config.get(s.SES_CONNECTIONS)), region=str(config.get(s.SES_REGION)),
                            credentials=credentials, configuration_set=config.get(s.SES_CONFIGURATION_SET) or None,
                            client=client, **common)
    if name == "postmark":
        # Two calls in flight: one batch is being answered while the next one fills.
        return PostmarkTransport(workers=2, batch_size=int(config.get(s.POSTMARK_BATCH_SIZE)), http=client,
                                 token=str(config.get(s.POSTMARK_SERVER_TOKEN)),
                                 stream=str(config.get(s.POSTMARK_TRANSACTIONAL_STREAM if transactional
                                                       else s.POSTMARK_MESSAGE_STREAM)), **common)
    if name == "mailgun":
        return MailgunTransport(workers=int(config.get(s.MAILGUN_CONNECTIONS)), http=client,
                                api_key=str(config.get(s.MAILGUN_API_KEY)), domain=str(config.get(s.MAILGUN_DOMAIN)),
                                api_url=str(config.get(s.MAILGUN_API_URL)), **common)
    raise ValueError(f"not an email service provider: {name!r}")


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split())


def _short(text: str, most: int = 200) -> str:
    line = " ".join(text.split())
    return line if len(line) <= most else line[:most] + "..."


__all__ = ["EspOutcome", "EspTransport", "MailgunTransport", "PostmarkTransport", "SesTransport", "Verdict",
           "esp_describe", "esp_rate", "esp_transport", "missing_for", "postmark_message", "postmark_verdict",
           "ses_verdict", "transport_name"]
