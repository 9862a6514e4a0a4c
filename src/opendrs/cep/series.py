"""Series identity: the labels of a sample's series (its entity named by kind,
its host, its own labels), and the short name an alarm of that series goes by."""

from __future__ import annotations

from collections.abc import Mapping

from opendrs.domain.sample import EntityKind, Sample

# Labels that name the entity itself rather than a part of it (a device, an interface).
IDENTITY_LABELS = ("host", "instance", "volume")


def series_labels(sample: Sample) -> dict[str, str]:
    """`{host: h1}` for a host sample, `{instance: vm1, host: h1}` for an instance,
    plus the sample's own labels (`interface`, `device`...)."""
    labels: dict[str, str] = {}
    if sample.kind == EntityKind.HOST:
        if sample.entity:
            labels["host"] = sample.entity
    else:
        labels[sample.kind.value] = sample.entity
        if sample.host:
            labels["host"] = sample.host
    if sample.labels:
        labels.update(sample.labels)
    return labels


def entity_of(labels: Mapping[str, str]) -> tuple[str, EntityKind, str]:
    """The (entity, kind, host) a label set names: the inverse of `series_labels`."""
    host = labels.get("host", "")
    for kind in (EntityKind.INSTANCE, EntityKind.VOLUME):
        name = labels.get(kind.value)
        if name:
            return name, kind, host
    return host, EntityKind.HOST, host


def series_name(labels: Mapping[str, str]) -> str:
    """`vm1`, or `vm1{interface=tap0}` when the series is a part of the entity, so
    each series' alarm has its own (rule, entity) key."""
    entity, _, _ = entity_of(labels)
    extra = sorted((k, v) for k, v in labels.items() if k not in IDENTITY_LABELS)
    if not extra:
        return entity or "{}"
    inner = ",".join(f"{k}={v}" for k, v in extra)
    return f"{entity}{{{inner}}}"
