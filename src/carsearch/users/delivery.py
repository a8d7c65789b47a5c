"""Delivering notifications: a webhook (JSON POST) and/or e-mail (SMTP), when configured.

Notifications are grouped per user: one webhook call and one e-mail per user per run.
Success marks them delivered; a failure counts an attempt and they are tried again next
run, up to MAX_ATTEMPTS. They stay readable in the API either way.
"""

from __future__ import annotations

import asyncio
import logging
import smtplib
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from carsearch.config import Settings
from carsearch.users import repository

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
BATCH = 500


@dataclass
class DeliveryReport:
    delivered: int = 0
    failed: int = 0


def _email(settings: Settings, to: str, notes: list[dict[str, Any]]) -> EmailMessage:
    message = EmailMessage()
    message["From"] = settings.smtp_from
    message["To"] = to
    message["Subject"] = (
        notes[0]["title"] if len(notes) == 1 else f"CarSearch: {len(notes)} updates on your cars"
    )
    lines = [f"- {note['title']}" for note in notes]
    message.set_content("\n".join(["What changed:", "", *lines, "", "-- CarSearch"]))
    return message


def _send_mail(settings: Settings, message: EmailMessage) -> None:
    assert settings.smtp_host is not None
    with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=15) as smtp:
        if settings.smtp_starttls:
            smtp.starttls()
        if settings.smtp_username and settings.smtp_password:
            smtp.login(settings.smtp_username, settings.smtp_password)
        smtp.send_message(message)


async def deliver(
    db: AsyncSession, settings: Settings, http: httpx.AsyncClient | None = None
) -> DeliveryReport:
    report = DeliveryReport()
    if not settings.alert_webhook_url and not settings.smtp_host:
        return report
    pending = await repository.undelivered(db, BATCH, MAX_ATTEMPTS)
    by_user: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for note in pending:
        by_user[note["user_id"]].append(note)
    client = http or httpx.AsyncClient(timeout=10)
    try:
        for user_id, notes in by_user.items():
            ok = True
            if settings.alert_webhook_url:
                body = {
                    "user": {"id": user_id, "email": notes[0]["email"]},
                    "notifications": [
                        {
                            "id": note["id"],
                            "kind": note["kind"],
                            "title": note["title"],
                            "payload": note["payload"],
                            "created_at": note["created_at"].isoformat(),
                        }
                        for note in notes
                    ],
                }
                try:
                    response = await client.post(settings.alert_webhook_url, json=body)
                    ok = response.status_code < 300
                except httpx.HTTPError as exc:
                    logger.warning("alert webhook failed: %s", exc)
                    ok = False
            if ok and settings.smtp_host:
                try:
                    message = _email(settings, notes[0]["email"], notes)
                    await asyncio.to_thread(_send_mail, settings, message)
                except (OSError, smtplib.SMTPException) as exc:
                    logger.warning("alert e-mail failed: %s", exc)
                    ok = False
            ids = [note["id"] for note in notes]
            await repository.mark_delivery(db, ids, delivered=ok, now=datetime.now(UTC))
            if ok:
                report.delivered += len(ids)
            else:
                report.failed += len(ids)
    finally:
        if http is None:
            await client.aclose()
    return report
