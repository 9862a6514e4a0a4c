"""Alertmanager's formats over httpx: the webhook payload Alertmanager sends its
receivers (so any receiver written for it works with opendrs unchanged), and
its `/api/v2/alerts` API (so opendrs can feed a real Alertmanager)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import httpx

from opendrs.cep.routing import Batch
from opendrs.domain.alarm import AlarmState, AlarmTransition
from opendrs.domain.errors import DriverError, InvalidInput

PAYLOAD_VERSION = "4"
DEDUP_HEADER = "Idempotency-Key"
_FIRING = frozenset({AlarmState.ALARM, AlarmState.NO_DATA, AlarmState.FLAPPING})
_NEVER = "0001-01-01T00:00:00Z"  # Alertmanager's zero time: no end known yet


def rfc3339(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")


def alert_labels(t: AlarmTransition) -> dict[str, str]:
    """Identity of the alert: the rule as `alertname`, severity, the alarm's labels.
    The state is not a label, or firing and resolved would be two alerts."""
    return {"alertname": t.rule, "severity": t.severity.value, **dict(t.labels)}


def fingerprint(labels: Mapping[str, str]) -> str:
    digest = hashlib.sha256()
    for key, value in sorted(labels.items()):
        digest.update(f"{key}\0{value}\0".encode())
    return digest.hexdigest()[:16]


def alert(t: AlarmTransition, generator_url: str = "") -> dict[str, Any]:
    """One alert as Alertmanager's webhook lists it."""
    labels = alert_labels(t)
    firing = t.current in _FIRING
    annotations = {
        **dict(t.annotations),
        "reason": t.reason,
        "state": t.current.value,
        "rule_version": t.rule_version,
        "dedup_key": t.dedup_key,
    }
    if t.value is not None:
        annotations["value"] = f"{t.value:g}"
    return {
        "status": "firing" if firing else "resolved",
        "labels": labels,
        "annotations": annotations,
        "startsAt": rfc3339(t.time),
        "endsAt": _NEVER if firing else rfc3339(t.time),
        "generatorURL": generator_url,
        "fingerprint": fingerprint(labels),
    }


def _common(dicts: list[dict[str, str]]) -> dict[str, str]:
    if not dicts:
        return {}
    first = dicts[0]
    return {k: v for k, v in first.items() if all(d.get(k) == v for d in dicts[1:])}


def webhook_payload(batch: Batch, *, receiver: str, external_url: str = "") -> dict[str, Any]:
    """The JSON body Alertmanager POSTs to a webhook receiver, for one batch."""
    alerts = [alert(t, external_url) for t in batch.notifications]
    group_labels = {k: v for k, v in batch.group if v}
    group_key = "{}:{" + ", ".join(f'{k}="{v}"' for k, v in sorted(group_labels.items())) + "}"
    return {
        "version": PAYLOAD_VERSION,
        "groupKey": group_key,
        "truncatedAlerts": 0,
        "status": "firing" if any(a["status"] == "firing" for a in alerts) else "resolved",
        "receiver": receiver,
        "groupLabels": group_labels,
        "commonLabels": _common([a["labels"] for a in alerts]),
        "commonAnnotations": _common(
            [{k: v for k, v in a["annotations"].items() if k != "dedup_key"} for a in alerts]
        ),
        "externalURL": external_url,
        "alerts": alerts,
    }


def api_alerts(batch: Batch, generator_url: str = "") -> list[dict[str, Any]]:
    """The body of `POST /api/v2/alerts`: Alertmanager dedups them by labels."""
    out = []
    for t in batch.notifications:
        a = alert(t, generator_url)
        posted: dict[str, Any] = {
            "labels": a["labels"],
            "annotations": a["annotations"],
            "startsAt": a["startsAt"],
            "generatorURL": generator_url,
        }
        if a["status"] == "resolved":
            posted["endsAt"] = a["endsAt"]
        out.append(posted)
    return out


def _post(client: httpx.Client, url: str, body: Any, headers: Mapping[str, str]) -> None:
    try:
        reply = client.post(url, json=body, headers=dict(headers))
    except httpx.HTTPError as exc:
        raise DriverError(f"POST {url} failed: {exc}", transient=True) from exc
    if reply.status_code >= 300:
        raise DriverError(
            f"POST {url} answered {reply.status_code}: {reply.text[:200]}",
            transient=reply.status_code >= 500 or reply.status_code == 429,
        )


def _check_url(url: str, field: str) -> str:
    if not url.startswith(("http://", "https://")):
        raise InvalidInput(f"expected an http(s) URL, got {url!r}", field=field)
    return url


class WebhookNotifier:
    """POSTs each batch in Alertmanager's webhook payload, with its dedup key in
    the `Idempotency-Key` header."""

    def __init__(
        self,
        url: str,
        *,
        receiver: str = "opendrs",
        external_url: str = "",
        client: httpx.Client | None = None,
        timeout: float = 5.0,
    ) -> None:
        self.url = _check_url(url, "url")
        self.name = f"webhook {url}"
        self._receiver = receiver
        self._external_url = external_url
        self._client = client or httpx.Client(timeout=timeout)

    def send(self, batch: Batch) -> None:
        body = webhook_payload(batch, receiver=self._receiver, external_url=self._external_url)
        _post(self._client, self.url, body, {DEDUP_HEADER: batch.dedup_key})

    def close(self) -> None:
        self._client.close()


class AlertmanagerNotifier:
    """Feeds a real Alertmanager (`base_url` like http://127.0.0.1:9093), which
    then groups, silences and routes as configured there."""

    def __init__(
        self,
        base_url: str,
        *,
        generator_url: str = "",
        client: httpx.Client | None = None,
        timeout: float = 5.0,
    ) -> None:
        self.url = _check_url(base_url, "url").rstrip("/") + "/api/v2/alerts"
        self.name = f"alertmanager {base_url}"
        self._generator_url = generator_url
        self._client = client or httpx.Client(timeout=timeout)

    def send(self, batch: Batch) -> None:
        _post(self._client, self.url, api_alerts(batch, self._generator_url), {})

    def close(self) -> None:
        self._client.close()
