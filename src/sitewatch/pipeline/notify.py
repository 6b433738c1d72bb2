"""Notifications of new alerts and alert state changes: a signed webhook and e-mail over SMTP.

Delivery goes through the store's outbox (:meth:`~sitewatch.store.workspace.Workspace.enqueue_notifications`):
each alert event is queued once per route in one transaction, delivered, then marked sent. A
process killed between a route accepting a notification and the mark resends it once on restart,
so delivery is at-least-once with at most one repeat; every delivery carries a stable id
(``X-Sitewatch-Delivery`` header, the mail's ``Message-ID``) for receivers to drop the repeat.

Secrets (the webhook's HMAC key, the SMTP password) are read from the environment variables the
routes name, at delivery time, and never logged; log lines name the route, not its URL.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import smtplib
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate

from sitewatch import __version__
from sitewatch.core.errors import SitewatchError
from sitewatch.core.types import Alert
from sitewatch.monitor.lifecycle import severity_of
from sitewatch.pipeline.watch_config import EmailRoute, Route, WebhookRoute
from sitewatch.store.records import Notification
from sitewatch.store.settings import alert_url
from sitewatch.store.workspace import Workspace

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Sitewatch-Signature"
DELIVERY_HEADER = "X-Sitewatch-Delivery"
EVENT_HEADER = "X-Sitewatch-Event"
RETRY_WAIT_S = 1.0
"""First wait between tries of one delivery, doubled after each (capped at 60 s)."""


class NotificationError(SitewatchError, OSError):
    """A route did not accept a notification; the message names the route, never its secret."""


@dataclass(frozen=True, slots=True)
class DeliveryReport:
    """What one delivery pass did."""

    sent: tuple[str, ...] = ()
    """Delivery ids accepted."""
    failed: tuple[str, ...] = ()
    """``delivery id: why`` for each not accepted (retried next pass, up to ``max_attempts``)."""


def sign(body: bytes, secret: str) -> str:
    """The signature header's value: ``sha256=<hex HMAC-SHA256 of body under secret>``."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def routes_for(routes: Sequence[Route]) -> Callable[[Alert, str], list[str]]:
    """The outbox's router: names of the routes that want ``event`` of ``alert``."""

    def choose(alert: Alert, event: str) -> list[str]:
        severity = severity_of(alert)
        return [route.name for route in routes if route.filter.wants(alert.site_id, severity, event)]

    return choose


def payload(notification: Notification, alert: Alert, *, site_name: str, workspace_name: str,
            dashboard_url: str) -> dict[str, object]:
    """The JSON a webhook receives (and what an e-mail says in words)."""
    return {
        "delivery": notification.delivery_id,
        "event": notification.event,
        "workspace": workspace_name,
        "who": notification.who,
        "comment": notification.comment,
        "link": alert_url(dashboard_url, alert.id) if dashboard_url else None,
        "alert": {
            "id": alert.id, "site_id": alert.site_id, "site_name": site_name, "zone_id": alert.zone_id,
            "observation_id": alert.observation_id, "acquired": alert.acquired.isoformat(),
            "indicator": alert.indicator, "value": alert.value, "baseline": alert.baseline,
            "score": alert.score, "p_value": alert.p_value, "severity": severity_of(alert).value,
            "state": alert.state.value, "explanation": alert.explanation,
        },
    }


def send_webhook(route: WebhookRoute, document: Mapping[str, object], *, delivery_id: str, event: str,
                 secret: str) -> None:
    """POST ``document`` once; raises :class:`NotificationError` unless the receiver answers 2xx."""
    body = json.dumps(document, sort_keys=True).encode("utf-8")
    request = urllib.request.Request(route.url, data=body, method="POST", headers={
        "Content-Type": "application/json", "User-Agent": f"sitewatch/{__version__}",
        SIGNATURE_HEADER: sign(body, secret), DELIVERY_HEADER: delivery_id, EVENT_HEADER: event,
    })
    try:
        with urllib.request.urlopen(request, timeout=route.timeout_s) as response:
            status = response.status
    except urllib.error.HTTPError as error:
        raise NotificationError(f"webhook route {route.name}: the receiver answered HTTP {error.code}") \
            from None
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise NotificationError(f"webhook route {route.name}: cannot reach the receiver ({reason}); "
                                "check that it is up") from None
    if not 200 <= status < 300:
        raise NotificationError(f"webhook route {route.name}: the receiver answered HTTP {status}")


def email_message(route: EmailRoute, document: Mapping[str, object]) -> EmailMessage:
    """The plain-text mail of one notification."""
    alert = document["alert"]
    if not isinstance(alert, Mapping):  # pragma: no cover - payload() always builds a mapping
        raise TypeError("the payload's alert must be a mapping")
    event = str(document["event"])
    what = "New alert" if event == "raised" else f"Alert {event.replace('_', ' ')}"
    subject = (f"[sitewatch] {what} ({alert['severity']}) at {alert['site_name']}: "
               f"{str(alert['indicator']).replace('_', ' ')}")
    p_value = alert["p_value"]
    lines = [
        f"{what} at {alert['site_name']} ({alert['site_id']}), zone {alert['zone_id'] or '-'}.",
        "",
        f"Image acquired: {alert['acquired']}",
        f"Indicator: {alert['indicator']} = {alert['value']:.3g} (usual: {alert['baseline']:.3g})",
        f"p-value: {p_value:.3g}" if isinstance(p_value, float)
        else "p-value: none (first-pass change score)",
        f"Severity: {alert['severity']}; state: {alert['state']}",
    ]
    if event != "raised":
        lines.append(f"Changed by {document['who'] or 'unknown'}"
                     + (f": {document['comment']}" if document["comment"] else ""))
    lines += ["", str(alert["explanation"]), ""]
    lines.append(f"Open it: {document['link']}" if document["link"]
                 else "Set dashboard_url in sitewatch.toml to get a link to the alert here.")
    lines += ["", f"Delivery {document['delivery']} (workspace {document['workspace']})."]
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = route.sender
    message["To"] = ", ".join(route.to)
    message["Date"] = formatdate(usegmt=True)
    delivery = str(document["delivery"])
    message["Message-ID"] = f"<{hashlib.sha256(delivery.encode()).hexdigest()[:32]}@sitewatch>"
    message[DELIVERY_HEADER] = delivery
    message.set_content("\n".join(lines) + "\n")
    return message


def send_email(route: EmailRoute, message: EmailMessage, *, password: str) -> None:
    """Send once over SMTP after STARTTLS (refusing a server without it); :class:`NotificationError`
    when that fails."""
    context = ssl.create_default_context(cafile=route.ca_file or None)
    try:
        with smtplib.SMTP(route.smtp_host, route.smtp_port, timeout=route.timeout_s) as smtp:
            smtp.ehlo()
            if not smtp.has_extn("starttls"):
                raise NotificationError(f"e-mail route {route.name}: {route.smtp_host}:{route.smtp_port} "
                                        "does not offer STARTTLS; sitewatch sends mail only over TLS")
            smtp.starttls(context=context)
            smtp.ehlo()
            if route.username:
                smtp.login(route.username, password)
            smtp.send_message(message)
    except NotificationError:
        raise
    except smtplib.SMTPAuthenticationError as error:
        raise NotificationError(f"e-mail route {route.name}: the server refused the login of "
                                f"{route.username!r} (SMTP {error.smtp_code}); check {route.password_env}") \
            from None
    except (smtplib.SMTPException, ssl.SSLError, OSError) as error:
        raise NotificationError(f"e-mail route {route.name}: sending through {route.smtp_host}:"
                                f"{route.smtp_port} failed ({type(error).__name__}: {error})") from None


def deliver(route: Route, document: Mapping[str, object], *, environ: Mapping[str, str],
            sleep: Callable[[float], object] = time.sleep, should_stop: Callable[[], bool] = lambda: False,
            retry_wait_s: float = RETRY_WAIT_S) -> None:
    """One notification along ``route``, tried ``1 + route.retries`` times with doubling waits."""
    delivery_id, event = str(document["delivery"]), str(document["event"])
    secret_name = route.secret_env if isinstance(route, WebhookRoute) else route.password_env
    secret = environ.get(secret_name, "") if secret_name else ""
    if secret_name and not secret:
        raise NotificationError(f"route {route.name}: the environment variable {secret_name} is not set")
    message = email_message(route, document) if isinstance(route, EmailRoute) else None
    wait = retry_wait_s
    for attempt in range(route.retries + 1):
        try:
            if isinstance(route, WebhookRoute):
                send_webhook(route, document, delivery_id=delivery_id, event=event, secret=secret)
            elif message is not None:
                send_email(route, message, password=secret)
            return
        except NotificationError as error:
            if attempt == route.retries or should_stop():
                raise
            log.info("%s (try %d of %d); trying again in %.1f s", error, attempt + 1, route.retries + 1, wait)
            sleep(wait)
            wait = min(wait * 2, 60.0)


def deliver_pending(workspace: Workspace, routes: Sequence[Route], *, max_attempts: int,
                    environ: Mapping[str, str], should_stop: Callable[[], bool] = lambda: False,
                    retry_wait_s: float = RETRY_WAIT_S) -> DeliveryReport:
    """Deliver every queued notification not yet sent, oldest first, marking each as it goes.

    A route the settings no longer name leaves its rows queued (logged). Stops between two
    deliveries when ``should_stop()`` says so."""
    by_name = {route.name: route for route in routes}
    sent: list[str] = []
    failed: list[str] = []
    sites: dict[str, str] = {}
    for notification in workspace.pending_notifications(max_attempts=max_attempts):
        if should_stop():
            break
        route = by_name.get(notification.route)
        if route is None:
            log.warning("notification %s is queued for route %s, which sitewatch.toml no longer names; "
                        "it stays queued", notification.delivery_id, notification.route)
            continue
        alert = workspace.alert(notification.alert_id)
        if alert.site_id not in sites:
            sites[alert.site_id] = workspace.site(alert.site_id).name
        document = payload(notification, alert, site_name=sites[alert.site_id],
                           workspace_name=workspace.settings.name,
                           dashboard_url=workspace.settings.dashboard_url)
        try:
            deliver(route, document, environ=environ, should_stop=should_stop, retry_wait_s=retry_wait_s)
        except NotificationError as error:
            workspace.record_delivery(notification.id, error=str(error))
            attempts = notification.attempts + 1
            gives_up = attempts >= max_attempts
            log.warning("%s; %s", error, f"given up after {attempts} deliveries" if gives_up
                        else "queued for the next cycle")
            failed.append(f"{notification.delivery_id}: {error}")
            continue
        workspace.record_delivery(notification.id, error=None)
        log.info("notified %s of %s (%s)", route.name, notification.alert_id, notification.event)
        sent.append(notification.delivery_id)
    return DeliveryReport(tuple(sent), tuple(failed))
