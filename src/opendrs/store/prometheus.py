"""History from a Prometheus-compatible server (Prometheus, VictoriaMetrics,
Mimir, Thanos) through its `GET /api/v1/query_range`, so a site that already
runs one can feed the decision engine from it instead of the round-robin files.
Results come back as a matrix on the requested grid, like HostArchives.read."""

from __future__ import annotations

import json
import math
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from opendrs.domain.errors import InvalidInput, StoreError


@dataclass(frozen=True, slots=True)
class RangeMatrix:
    """Series on one grid: timestamps start, start+step, … end; values[row, series]."""

    timestamps: npt.NDArray[np.float64]
    labels: tuple[Mapping[str, str], ...]
    values: npt.NDArray[np.float64]


class PrometheusSource:
    """A query_range client; `base_url` such as `http://127.0.0.1:9090`."""

    def __init__(self, base_url: str, *, timeout: float = 10.0) -> None:
        parsed = urllib.parse.urlparse(base_url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise InvalidInput(f"{base_url!r} is not an http(s) URL", field="base_url")
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    def query_range(self, query: str, start: float, end: float, step: float) -> RangeMatrix:
        """Evaluate a PromQL `query` at start, start+step, … end."""
        if step <= 0:
            raise InvalidInput(f"step {step} must be positive", field="step")
        if end < start:
            raise InvalidInput(f"end {end} is before start {start}", field="end")
        data = self._get(
            "/api/v1/query_range",
            {"query": query, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step:g}"},
        )
        if data.get("resultType") != "matrix":
            raise StoreError(f"query_range answered {data.get('resultType')!r}, not a matrix")
        count = math.floor((end - start) / step + 1e-9) + 1
        grid = start + step * np.arange(count, dtype=np.float64)
        results = data.get("result", [])
        values = np.full((count, len(results)), math.nan)
        labels: list[Mapping[str, str]] = []
        for column, series in enumerate(results):
            labels.append(dict(series.get("metric", {})))
            for stamp, text in series.get("values", []):
                row = round((float(stamp) - start) / step)
                if 0 <= row < count:
                    values[row, column] = _number(text)
        return RangeMatrix(grid, tuple(labels), values)

    def _get(self, path: str, params: Mapping[str, str]) -> dict[str, Any]:
        url = f"{self.base_url}{path}?{urllib.parse.urlencode(params)}"
        try:
            with urllib.request.urlopen(url, timeout=self.timeout) as response:
                body = json.loads(response.read())
        except urllib.error.HTTPError as error:
            body = _error_body(error)
            message = body.get("error") or f"HTTP {error.code}"
            if error.code in (400, 422):
                raise InvalidInput(str(message), source=self.base_url, field="query") from None
            raise StoreError(f"{self.base_url}: {message}", transient=error.code >= 500) from None
        except (urllib.error.URLError, TimeoutError, ConnectionError) as error:
            raise StoreError(f"{self.base_url}: {error}", transient=True) from None
        except json.JSONDecodeError:
            raise StoreError(f"{self.base_url}: the answer is not JSON") from None
        if body.get("status") != "success":
            raise StoreError(f"{self.base_url}: {body.get('error', 'query failed')}")
        data = body.get("data")
        if not isinstance(data, dict):
            raise StoreError(f"{self.base_url}: the answer has no data")
        return data


def _error_body(error: urllib.error.HTTPError) -> dict[str, Any]:
    try:
        parsed = json.loads(error.read())
    except (json.JSONDecodeError, OSError):
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _number(text: Any) -> float:
    try:
        return float(text)  # the API sends "NaN", "+Inf", "1.5" as strings
    except (TypeError, ValueError):
        return math.nan
