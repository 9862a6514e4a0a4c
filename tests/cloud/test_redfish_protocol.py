"""Redfish details the emulator does not show: a host passing through PoweringOff,
ResetType fallbacks from AllowableValues and from an ActionInfo resource, Redfish
sessions (login, expiry, logout) and BMC-side failures. A stand-in BMC answers over
httpx's mock transport; the clock is a counter, so no test waits."""

from __future__ import annotations

import json
import logging
from typing import Any

import httpx
import pytest

from opendrs.cloud.redfish import PowerWait, RedfishEndpoint, RedfishPower, choose_reset
from opendrs.domain.errors import DriverError
from opendrs.domain.power import PowerState

SYSTEM = "/redfish/v1/Systems/1"
RESET = f"{SYSTEM}/Actions/ComputerSystem.Reset"
ACTION_INFO = f"{SYSTEM}/ResetActionInfo"
SESSIONS = "/redfish/v1/SessionService/Sessions"


class StandInBmc:
    """One system; a reset takes `steps` reads of the system to finish, showing
    PoweringOn/PoweringOff meanwhile."""

    def __init__(
        self,
        state: str = "On",
        allowed: list[str] | None = None,
        *,
        action_info: bool = False,
        sessions: bool = False,
        steps: int = 3,
        reset_status: int = 204,
    ) -> None:
        self.state = state
        self.allowed = allowed
        self.action_info = action_info
        self.sessions = sessions
        self.steps = steps
        self.reset_status = reset_status
        self.pending: tuple[str, int] | None = None
        self.resets: list[str] = []
        self.logins = 0
        self.valid_tokens: set[str] = set()
        self.deleted: list[str] = []

    def handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        open_paths = ("/redfish/v1/", SESSIONS)
        token = request.headers.get("X-Auth-Token")
        if self.sessions and path not in open_paths and token not in self.valid_tokens:
            return httpx.Response(401, json={"error": {"message": "no session"}})
        if path == "/redfish/v1/":
            root: dict[str, Any] = {"Systems": {"@odata.id": "/redfish/v1/Systems"}}
            if self.sessions:
                root["Links"] = {"Sessions": {"@odata.id": SESSIONS}}
            return httpx.Response(200, json=root)
        if path == SESSIONS and request.method == "POST":
            body = json.loads(request.content)
            if body != {"UserName": "root", "Password": "calvin"}:
                return httpx.Response(401, json={"error": {"message": "bad login"}})
            self.logins += 1
            token = f"token-{self.logins}"
            self.valid_tokens.add(token)
            headers = {"X-Auth-Token": token, "Location": f"{SESSIONS}/{self.logins}"}
            return httpx.Response(201, json={}, headers=headers)
        if path.startswith(f"{SESSIONS}/") and request.method == "DELETE":
            self.deleted.append(path)
            return httpx.Response(204)
        if path == "/redfish/v1/Systems":
            return httpx.Response(200, json={"Members": [{"@odata.id": SYSTEM}]})
        if path == SYSTEM:
            return httpx.Response(200, json=self.system())
        if path == ACTION_INFO and self.action_info:
            parameters = [{"Name": "ResetType", "AllowableValues": self.allowed}]
            return httpx.Response(200, json={"Parameters": parameters})
        if path == RESET and request.method == "POST":
            reset_type = json.loads(request.content)["ResetType"]
            self.resets.append(reset_type)
            if self.reset_status >= 400:
                error = {"@Message.ExtendedInfo": [{"Message": "the BMC is busy"}]}
                return httpx.Response(self.reset_status, json={"error": error})
            if self.allowed is not None and reset_type not in self.allowed:
                return httpx.Response(400, json={"error": {"message": "not allowed"}})
            target = "Off" if "Off" in reset_type or "Shutdown" in reset_type else "On"
            if reset_type == "PushPowerButton":  # toggles
                target = "Off" if self.state == "On" else "On"
            self.pending = (target, self.steps)
            return httpx.Response(204)
        return httpx.Response(404, json={"error": {"message": f"no {path}"}})

    def system(self) -> dict[str, Any]:
        if self.pending is not None:
            target, left = self.pending
            if left <= 0:
                self.state, self.pending = target, None
            else:
                self.pending = (target, left - 1)
                self.state = f"Powering{target}"
        action: dict[str, Any] = {"target": RESET}
        if self.action_info:
            action["@Redfish.ActionInfo"] = ACTION_INFO
        elif self.allowed is not None:
            action["ResetType@Redfish.AllowableValues"] = self.allowed
        return {"PowerState": self.state, "Actions": {"#ComputerSystem.Reset": action}}


class CountingClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def monotonic(self) -> float:
        return self.now


def power_over(
    bmc: StandInBmc, endpoint: RedfishEndpoint | None = None, timeout_s: float = 60.0
) -> tuple[RedfishPower, CountingClock]:
    clock = CountingClock()
    endpoint = endpoint or RedfishEndpoint(url="https://bmc-1", system="1")
    power = RedfishPower(
        {"host-1": endpoint},
        PowerWait(timeout_s=timeout_s, poll_interval_s=5.0),
        transport=httpx.MockTransport(bmc.handle),
        sleep=clock.sleep,
        monotonic=clock.monotonic,
    )
    return power, clock


def test_the_wait_follows_the_host_through_powering_off(caplog: pytest.LogCaptureFixture) -> None:
    bmc = StandInBmc("On", steps=3)
    power, clock = power_over(bmc)
    with caplog.at_level(logging.INFO, logger="opendrs.cloud.redfish"):
        power.power_off("host-1")
    assert bmc.resets == ["GracefulShutdown"]
    assert bmc.state == "Off"
    assert clock.sleeps == [5.0, 5.0, 5.0]
    assert any("PowerState PoweringOff" in r.getMessage() for r in caplog.records)
    assert power.power_state("host-1") == PowerState.OFF


def test_the_last_sleep_stops_at_the_timeout() -> None:
    bmc = StandInBmc("Off", steps=100)
    power, clock = power_over(bmc, timeout_s=12.0)
    with pytest.raises(DriverError, match="still PoweringOn after 12 s") as caught:
        power.power_on("host-1")
    assert caught.value.transient
    assert clock.sleeps == [5.0, 5.0, 2.0]


def test_a_transitional_state_reads_as_unknown() -> None:
    bmc = StandInBmc("PoweringOn")
    power, _ = power_over(bmc)
    assert power.power_state("host-1") == PowerState.UNKNOWN


@pytest.mark.parametrize(
    ("allowed", "graceful", "sent"),
    [
        (["On", "ForceOff"], True, "ForceOff"),  # no graceful shutdown offered
        (["On", "GracefulShutdown", "ForceOff"], False, "ForceOff"),
        (["PushPowerButton", "On"], False, "PushPowerButton"),
        (None, True, "GracefulShutdown"),  # the BMC does not say: the standard value
    ],
)
def test_power_off_falls_back_along_the_allowed_values(
    allowed: list[str] | None, graceful: bool, sent: str
) -> None:
    bmc = StandInBmc("On", allowed, steps=0)
    power, _ = power_over(bmc)
    power.power_off("host-1", graceful=graceful)
    assert bmc.resets == [sent]


def test_power_on_uses_force_on_where_on_is_not_allowed() -> None:
    bmc = StandInBmc("Off", ["ForceOn", "ForceOff"], steps=0)
    power, _ = power_over(bmc)
    power.power_on("host-1")
    assert bmc.resets == ["ForceOn"]


def test_allowed_values_are_read_from_the_action_info() -> None:
    bmc = StandInBmc("On", ["ForceOff", "On"], action_info=True, steps=0)
    power, _ = power_over(bmc)
    power.power_off("host-1")
    assert bmc.resets == ["ForceOff"]


def test_no_usable_reset_type_is_refused_before_asking() -> None:
    bmc = StandInBmc("On", ["On", "Nmi"])
    power, _ = power_over(bmc)
    with pytest.raises(DriverError, match=r"allows ResetType On, Nmi, none of GracefulShutdown"):
        power.power_off("host-1")
    assert bmc.resets == []


def test_push_power_button_is_never_pressed_blind() -> None:
    # It toggles: with the state unknown it could switch the host the wrong way.
    bmc = StandInBmc("Paused", ["PushPowerButton"])
    power, _ = power_over(bmc)
    with pytest.raises(DriverError, match="none of On, ForceOn"):
        power.power_on("host-1")
    assert bmc.resets == []


@pytest.mark.parametrize(("status", "transient"), [(400, False), (409, False), (503, True)])
def test_a_refused_reset_says_why(status: int, transient: bool) -> None:
    bmc = StandInBmc("On", reset_status=status)
    power, _ = power_over(bmc)
    with pytest.raises(DriverError) as caught:
        power.power_off("host-1")
    message = str(caught.value)
    assert message.startswith("BMC of host-1 (https://bmc-1): the BMC refused ResetType")
    assert f"(HTTP {status}): the BMC is busy" in message
    assert caught.value.transient is transient


def test_a_session_is_opened_once_renewed_when_expired_and_closed() -> None:
    bmc = StandInBmc("On", sessions=True, steps=0)
    endpoint = RedfishEndpoint(
        url="https://bmc-1", system="1", username="root", password="calvin", auth="session"
    )
    power, _ = power_over(bmc, endpoint)
    assert power.power_state("host-1") == PowerState.ON
    assert power.power_state("host-1") == PowerState.ON
    assert bmc.logins == 1
    bmc.valid_tokens.clear()  # the BMC dropped the session
    power.power_off("host-1")
    assert bmc.logins == 2
    assert bmc.state == "Off"
    power.close()
    assert bmc.deleted == [f"{SESSIONS}/2"]


def test_a_refused_session_login_names_the_user() -> None:
    bmc = StandInBmc("On", sessions=True)
    endpoint = RedfishEndpoint(
        url="https://bmc-1", system="1", username="root", password="wrong", auth="session"
    )
    power, _ = power_over(bmc, endpoint)
    with pytest.raises(DriverError, match="refused the credentials of user 'root'"):
        power.power_state("host-1")


def test_a_reply_that_is_not_json_is_an_error() -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text="<html>login</html>")

    power = RedfishPower(
        {"host-1": RedfishEndpoint(url="https://bmc-1", system="1")},
        transport=httpx.MockTransport(handle),
    )
    with pytest.raises(DriverError, match=r"GET /redfish/v1/ answered no JSON object"):
        power.power_state("host-1")


def test_choose_reset_keeps_the_order_of_preference() -> None:
    assert choose_reset(["On", "ForceOn"], ["ForceOn", "On"]) == "On"
    assert choose_reset(["On", "ForceOn"], ["ForceOff"]) is None
    assert choose_reset(["On", "ForceOn"], None) == "On"
