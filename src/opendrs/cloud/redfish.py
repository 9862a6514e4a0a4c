"""Host power through Redfish (DMTF), the protocol of iDRAC, iLO, XCC and OpenBMC:
service root, Systems collection, the ComputerSystem.Reset action and PowerState
polling, over HTTP with basic auth or a Redfish session. Implements PowerControl;
every failure becomes a DriverError naming the host and its BMC's URL."""

from __future__ import annotations

import logging
import ssl
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import httpx

from opendrs.domain.errors import DriverError
from opendrs.domain.power import PowerState

log = logging.getLogger(__name__)

SERVICE_ROOT = "/redfish/v1/"
_DEFAULT_SESSIONS = "/redfish/v1/SessionService/Sessions"
# ResetType values to try, best first; only those the system allows are sent.
# PushPowerButton toggles, so it is used only once the current state is known.
_ON = ("On", "ForceOn", "PushPowerButton")
_GRACEFUL_OFF = ("GracefulShutdown", "ForceOff", "PushPowerButton")
_FORCED_OFF = ("ForceOff", "PushPowerButton")
_PROGRESS_EVERY_S = 30.0

Auth = Literal["basic", "session"]


@dataclass(frozen=True, slots=True)
class RedfishEndpoint:
    """The BMC of one host. `url` is the BMC's base (`https://10.0.0.11`); `system`
    the ComputerSystem's id or its full path (`/redfish/v1/Systems/1`), empty for
    the BMC's only system. `verify_tls` is a bool or a CA bundle path (BMCs often
    have self-signed certificates)."""

    url: str
    system: str = ""
    username: str = ""
    password: str = ""
    auth: Auth = "basic"
    verify_tls: bool | str = True


@dataclass(frozen=True, slots=True)
class PowerWait:
    """`timeout_s` bounds the wait for the target PowerState after a reset,
    `poll_interval_s` spaces the reads, `request_timeout_s` bounds one HTTP call."""

    timeout_s: float = 300.0
    poll_interval_s: float = 5.0
    request_timeout_s: float = 10.0


def _verify(value: bool | str) -> bool | ssl.SSLContext:
    if isinstance(value, bool):
        return value
    return ssl.create_default_context(cafile=value)


def _error_text(response: httpx.Response) -> str:
    """The message a Redfish error body carries, else the start of the body."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:200].strip()
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return str(body)[:200]
    for info in error.get("@Message.ExtendedInfo") or []:
        if isinstance(info, dict) and info.get("Message"):
            return str(info["Message"])
    return str(error.get("message") or error.get("code") or "")


class _Missing(Exception):
    """A 404 the caller turns into its own message (an unknown system)."""


class _Bmc:
    """One host's BMC: its HTTP client, session and the system's path."""

    def __init__(
        self,
        host: str,
        endpoint: RedfishEndpoint,
        wait: PowerWait,
        transport: httpx.BaseTransport | None,
    ) -> None:
        self.host = host
        self.endpoint = endpoint
        self.url = endpoint.url.rstrip("/")
        self.lock = threading.Lock()
        basic = endpoint.auth == "basic" and bool(endpoint.username)
        self._client = httpx.Client(
            base_url=self.url,
            auth=httpx.BasicAuth(endpoint.username, endpoint.password) if basic else None,
            verify=_verify(endpoint.verify_tls),
            timeout=wait.request_timeout_s,
            follow_redirects=True,
            headers={"Accept": "application/json", "OData-Version": "4.0"},
            transport=transport,
        )
        self._root: dict[str, Any] | None = None
        self._system_path: str | None = None
        self._token: str | None = None
        self._session_path: str | None = None

    def where(self) -> str:
        return f"BMC of {self.host} ({self.url})"

    # --- HTTP ------------------------------------------------------------

    def request(
        self, method: str, path: str, body: dict[str, Any] | None = None, *, check: bool = True
    ) -> httpx.Response:
        response = self._send(method, path, body)
        if response.status_code == 401 and self._token is not None:
            self._token = None  # the session expired: log in again, once
            response = self._send(method, path, body)
        if check or response.status_code in (401, 403):
            self._check(method, path, response)
        return response

    def get(self, path: str) -> dict[str, Any]:
        response = self.request("GET", path)
        try:
            document = response.json()
        except ValueError:
            document = None
        if not isinstance(document, dict):
            raise DriverError(f"{self.where()}: GET {path} answered no JSON object")
        return document

    def _send(self, method: str, path: str, body: dict[str, Any] | None) -> httpx.Response:
        headers = {}
        if self.endpoint.auth == "session" and self.endpoint.username and path != SERVICE_ROOT:
            headers["X-Auth-Token"] = self._session_token()
        try:
            return self._client.request(method, path, json=body, headers=headers)
        except httpx.TransportError as error:
            raise self._unreachable(error) from error

    def _unreachable(self, error: httpx.TransportError) -> DriverError:
        """A TLS failure is a setting to fix, not a BMC to wait for."""
        cause: BaseException | None = error
        while cause is not None and not isinstance(cause, ssl.SSLError):
            cause = cause.__cause__ or cause.__context__
        if isinstance(cause, ssl.SSLError):
            return DriverError(
                f"{self.where()}: TLS failed ({cause}); if the BMC's certificate is "
                f"self-signed, set power.hosts.{self.host}.verify_tls to false or to a CA bundle"
            )
        return DriverError(
            f"{self.where()}: BMC unreachable ({type(error).__name__}: {error})", transient=True
        )

    def _check(self, method: str, path: str, response: httpx.Response) -> None:
        status = response.status_code
        if status < 400:
            return
        what = f"{self.where()}: {method} {path}"
        if status == 401:
            user = self.endpoint.username
            refused = f"refused the credentials of user {user!r}" if user else "needs credentials"
            raise DriverError(f"{what}: the BMC {refused} (HTTP 401)")
        if status == 403:
            raise DriverError(f"{what}: the BMC denied access (HTTP 403): {_error_text(response)}")
        if status == 404:
            raise _Missing(_error_text(response))
        detail = _error_text(response)
        raise DriverError(f"{what}: HTTP {status}: {detail}", transient=status >= 500)

    def _session_token(self) -> str:
        if self._token is not None:
            return self._token
        path = _link(self.root(), "Links", "Sessions") or _DEFAULT_SESSIONS
        credentials = {"UserName": self.endpoint.username, "Password": self.endpoint.password}
        try:
            response = self._client.post(path, json=credentials)
        except httpx.TransportError as error:
            raise self._unreachable(error) from error
        if response.status_code == 404:
            raise DriverError(f"{self.where()}: the BMC has no session service at {path}")
        self._check("POST", path, response)
        token = str(response.headers.get("X-Auth-Token") or "")
        if not token:
            raise DriverError(f"{self.where()}: POST {path} gave no X-Auth-Token")
        self._token = token
        self._session_path = response.headers.get("Location")
        return token

    # --- resources ---------------------------------------------------------

    def root(self) -> dict[str, Any]:
        if self._root is None:
            try:
                self._root = self.get(SERVICE_ROOT)
            except _Missing:
                raise DriverError(f"{self.where()}: no Redfish service at {SERVICE_ROOT}") from None
        return self._root

    def systems_path(self) -> str:
        return (_link(self.root(), "Systems") or "/redfish/v1/Systems").rstrip("/")

    def system_members(self) -> list[str]:
        try:
            collection = self.get(self.systems_path())
        except _Missing:
            return []
        members = collection.get("Members") or []
        return [str(m["@odata.id"]) for m in members if isinstance(m, dict) and "@odata.id" in m]

    def system_path(self) -> str:
        if self._system_path is None:
            wanted = self.endpoint.system
            if wanted.startswith("/"):
                self._system_path = wanted
            elif wanted:
                self._system_path = f"{self.systems_path()}/{wanted}"
            else:
                members = self.system_members()
                if len(members) != 1:
                    raise DriverError(
                        f"{self.where()}: the BMC has {len(members)} systems "
                        f"({', '.join(members) or 'none'}); "
                        f"name one in power.hosts.{self.host}.system"
                    )
                self._system_path = members[0]
        return self._system_path

    def system(self) -> dict[str, Any]:
        path = self.system_path()
        try:
            return self.get(path)
        except _Missing:
            known = ", ".join(self.system_members()) or "none"
            raise DriverError(
                f"{self.where()}: unknown system {path} (the BMC has: {known})"
            ) from None

    def allowed_resets(self, system: Mapping[str, Any]) -> tuple[str, list[str] | None]:
        """The Reset action's target and its allowed ResetType values (None: the
        BMC does not say, so any may be tried)."""
        action = (system.get("Actions") or {}).get("#ComputerSystem.Reset")
        if not isinstance(action, dict) or not action.get("target"):
            raise DriverError(
                f"{self.where()}: system {self.system_path()} offers no ComputerSystem.Reset"
            )
        allowed = action.get("ResetType@Redfish.AllowableValues")
        info = action.get("@Redfish.ActionInfo")
        if allowed is None and isinstance(info, str):
            try:
                parameters = self.get(info).get("Parameters") or []
            except _Missing:
                parameters = []
            for parameter in parameters:
                if isinstance(parameter, dict) and parameter.get("Name") == "ResetType":
                    allowed = parameter.get("AllowableValues")
        values = [str(v) for v in allowed] if isinstance(allowed, list) else None
        return str(action["target"]), values

    def reset(self, target: str, reset_type: str) -> None:
        response = self.request("POST", target, {"ResetType": reset_type}, check=False)
        status = response.status_code
        if status < 400:
            return
        if status == 404:
            raise DriverError(f"{self.where()}: no reset action at {target} (HTTP 404)")
        raise DriverError(
            f"{self.where()}: the BMC refused ResetType {reset_type} "
            f"(HTTP {status}): {_error_text(response)}",
            transient=status >= 500,
        )

    def close(self) -> None:
        if self._session_path is not None and self._token is not None:
            try:
                self._client.delete(self._session_path, headers={"X-Auth-Token": self._token})
            except httpx.HTTPError:
                log.debug("closing the Redfish session of %s failed", self.host, exc_info=True)
        self._token = self._session_path = None
        self._client.close()


def _link(document: Mapping[str, Any], *keys: str) -> str | None:
    node: Any = document
    for key in keys:
        node = node.get(key) if isinstance(node, dict) else None
    target = node.get("@odata.id") if isinstance(node, dict) else None
    return str(target) if target else None


def parse_power_state(system: Mapping[str, Any]) -> PowerState:
    raw = system.get("PowerState")
    if raw == "On":
        return PowerState.ON
    if raw == "Off":
        return PowerState.OFF
    return PowerState.UNKNOWN


def choose_reset(preferred: Sequence[str], allowed: list[str] | None) -> str | None:
    """The first of `preferred` the system allows (the first of all when it does not say)."""
    if allowed is None:
        return preferred[0]
    return next((value for value in preferred if value in allowed), None)


class RedfishPower:
    """PowerControl over the BMCs of `endpoints` (host name -> endpoint). One HTTP
    client per BMC, made on first use; calls on one BMC are serialised. `sleep` and
    `monotonic` pace the polling, `transport` replaces the network in tests."""

    def __init__(
        self,
        endpoints: Mapping[str, RedfishEndpoint],
        wait: PowerWait | None = None,
        *,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._endpoints = dict(endpoints)
        self._wait = wait or PowerWait()
        self._transport = transport
        self._sleep = sleep
        self._monotonic = monotonic
        self._bmcs: dict[str, _Bmc] = {}
        self._lock = threading.Lock()

    def controls(self, host: str) -> bool:
        return host in self._endpoints

    def power_state(self, host: str) -> PowerState:
        bmc = self._bmc(host)
        with bmc.lock:
            return parse_power_state(bmc.system())

    def power_on(self, host: str) -> None:
        self._switch(host, PowerState.ON, _ON)

    def power_off(self, host: str, graceful: bool = True) -> None:
        self._switch(host, PowerState.OFF, _GRACEFUL_OFF if graceful else _FORCED_OFF)

    def close(self) -> None:
        with self._lock:
            bmcs, self._bmcs = list(self._bmcs.values()), {}
        for bmc in bmcs:
            bmc.close()

    def _bmc(self, host: str) -> _Bmc:
        with self._lock:
            bmc = self._bmcs.get(host)
            if bmc is None:
                endpoint = self._endpoints.get(host)
                if endpoint is None:
                    raise DriverError(f"no BMC is configured for host {host!r} (power.hosts)")
                bmc = _Bmc(host, endpoint, self._wait, self._transport)
                self._bmcs[host] = bmc
            return bmc

    def _switch(self, host: str, target: PowerState, preferred: Sequence[str]) -> None:
        bmc = self._bmc(host)
        with bmc.lock:
            system = bmc.system()
            current = parse_power_state(system)
            if current == target:
                log.info("%s: already %s, nothing to do", bmc.where(), target.value)
                return
            target_path, allowed = bmc.allowed_resets(system)
            usable = [
                p for p in preferred if p != "PushPowerButton" or current != PowerState.UNKNOWN
            ]
            reset_type = choose_reset(usable, allowed)
            if reset_type is None:
                raise DriverError(
                    f"{bmc.where()}: cannot power {target.value}: the system allows ResetType "
                    f"{', '.join(allowed or [])}, none of {', '.join(usable)}"
                )
            log.info(
                "%s: PowerState %s, sending ResetType %s",
                bmc.where(),
                system.get("PowerState"),
                reset_type,
            )
            bmc.reset(target_path, reset_type)
            self._await(bmc, target, reset_type)

    def _await(self, bmc: _Bmc, target: PowerState, reset_type: str) -> None:
        timeout = self._wait.timeout_s
        start = self._monotonic()
        last_raw: object = None
        last_told = start
        while True:
            raw = bmc.system().get("PowerState")
            now = self._monotonic()
            waited = now - start
            if parse_power_state({"PowerState": raw}) == target:
                log.info("%s: %s after %.0f s", bmc.where(), target.value, waited)
                return
            if waited >= timeout:
                raise DriverError(
                    f"{bmc.where()}: accepted ResetType {reset_type} but PowerState is still "
                    f"{raw} after {timeout:g} s (power.timeout_s)",
                    transient=True,
                )
            if raw != last_raw or now - last_told >= _PROGRESS_EVERY_S:
                log.info(
                    "%s: waiting for %s, PowerState %s (%.0f of %g s)",
                    bmc.where(),
                    target.value,
                    raw,
                    waited,
                    timeout,
                )
                last_raw, last_told = raw, now
            self._sleep(min(self._wait.poll_interval_s, max(timeout - waited, 0.0)))
