"""A real SMTP server for the tests: aiosmtpd's Controller, in the test process, on a free port.

The product sends through Django's SMTP backend to it, as it would to a mail relay, and the tests read
what it received: the envelope, and the message parsed as a mail reader would (its text and HTML parts,
its attachments). The server can be told to answer the next command of a stage (RCPT, DATA) with a
refusal, to play a busy (421, 451) or refusing (550) mail server.
"""

import email
import logging
import socket
import threading
from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import default as default_policy
from typing import Any

from aiosmtpd.controller import Controller

HOST = "127.0.0.1"
# The server logs every SMTP command at INFO; a test shows them only when it fails for another reason.
logging.getLogger("mail.log").setLevel(logging.WARNING)


@dataclass(frozen=True)
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage

    @property
    def to(self) -> str:
        return str(self.message["To"])

    @property
    def subject(self) -> str:
        # A long subject is folded over lines; a mail reader shows it as one.
        return " ".join(str(self.message["Subject"]).split())

    @property
    def text(self) -> str:
        return self.message.get_body(preferencelist=("plain",)).get_content()

    @property
    def html(self) -> str:
        return self.message.get_body(preferencelist=("html",)).get_content()

    @property
    def attachments(self) -> list[tuple[str, str, bytes]]:
        """(file name, content type, bytes) of each attachment."""
        return [
            (part.get_filename(), part.get_content_type(), part.get_payload(decode=True))
            for part in self.message.iter_attachments()
        ]


class Inbox:
    """The server's handler: keeps every message accepted, and plays the refusals it is told to."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._received: list[Received] = []
        self._refusals: list[tuple[str, str]] = []

    @property
    def received(self) -> list[Received]:
        with self._lock:
            return list(self._received)

    def refuse_next(self, stage: str, reply: str, *, times: int = 1) -> None:
        """Answer the next `times` commands of `stage` ("RCPT" or "DATA") with `reply`, e.g. "550 5.1.1 ..."."""
        with self._lock:
            self._refusals += [(stage, reply)] * times

    def clear(self) -> None:
        with self._lock:
            self._received.clear()
            self._refusals.clear()

    def _refusal(self, stage: str) -> str | None:
        with self._lock:
            for index, (refused_stage, reply) in enumerate(self._refusals):
                if refused_stage == stage:
                    del self._refusals[index]
                    return reply
        return None

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        refusal = self._refusal("RCPT")
        if refusal:
            return refusal
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        refusal = self._refusal("DATA")
        if refusal:
            return refusal
        message = email.message_from_bytes(envelope.original_content, policy=default_policy)
        with self._lock:
            self._received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), message))
        return "250 Message accepted for delivery"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


class SMTPServer:
    def __init__(self) -> None:
        self.inbox = Inbox()
        self.port = free_port()
        self.controller = Controller(self.inbox, hostname=HOST, port=self.port)

    def start(self) -> None:
        self.controller.start()

    def stop(self) -> None:
        self.controller.stop()

    def settings(self) -> dict[str, Any]:
        """Django's e-mail settings that send to this server."""
        return {
            "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "EMAIL_HOST": HOST,
            "EMAIL_PORT": self.port,
            "EMAIL_USE_TLS": False,
            "EMAIL_USE_SSL": False,
            "EMAIL_HOST_USER": "",
            "EMAIL_HOST_PASSWORD": "",
            "EMAIL_TIMEOUT": 10,
        }
