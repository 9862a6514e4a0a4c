"""Redfish power against a real Redfish service: sushy-tools' sushy-emulator, run as
a subprocess. One emulator serves libvirt's test:///default domain as a system
behind an htpasswd file (power really changes, as libvirt sees it); one serves the
same over HTTPS with a self-signed certificate; one serves the fake driver slowed
down to an hour per change, the BMC whose host never gets there in time. Each is
started once per module on a free port and stopped after."""

from __future__ import annotations

import ipaddress
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from fakes.repositories import MemoryRepositories
from needs import unavailable
from opendrs.cloud.libvirt_actions import LibvirtActions
from opendrs.cloud.redfish import PowerWait, RedfishEndpoint, RedfishPower
from opendrs.domain.errors import DriverError
from opendrs.domain.host import Host, HostState
from opendrs.domain.power import PowerState

USER, PASSWORD = "admin", "s3cret"
# libvirt's test:///default, shared by every connection of the emulator process (a
# test:///file URI would give each request a fresh copy): one running domain.
SYSTEM = "6695eb01-f6a4-8304-79aa-97f2502e193f"
SYSTEM_NAME = "test"
# The emulator reads its configuration as Python. The fake driver applies a power
# change 1..11 s after the request, picked by random.randint: an hour instead.
SLOW_CONFIG = """
import types
from sushy_tools.emulator.resources.systems import fakedriver
fakedriver.random = types.SimpleNamespace(randint=lambda low, high: 3600)
SUSHY_EMULATOR_FAKE_DRIVER = True
SUSHY_EMULATOR_FAKE_SYSTEMS = [
    {"uuid": "slow-1", "name": "slow-1", "power_state": "Off", "nics": []},
    {"uuid": "slow-2", "name": "slow-2", "power_state": "Off", "nics": []},
]
"""
QUICK = PowerWait(timeout_s=30.0, poll_interval_s=0.2, request_timeout_s=10.0)


@dataclass
class Emulator:
    url: str
    log: Path

    def resets(self) -> int:
        """How many ComputerSystem.Reset requests the emulator has served."""
        text = self.log.read_text(errors="replace")
        return sum("ComputerSystem.Reset" in line for line in text.splitlines())


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_emulator(
    workdir: Path, config: str, *args: str, scheme: str = "http"
) -> Iterator[Emulator]:
    """Run the emulator with `config` (Python) and its state kept in `workdir`."""
    try:
        import sushy_tools  # noqa: F401
    except ImportError:
        unavailable("sushy-tools is not installed (scripts/setup --test installs it)")
    port = free_port()
    log = workdir / "emulator.log"
    (workdir / "emulator.conf").write_text(f"SUSHY_EMULATOR_STATE_DIR = {str(workdir)!r}\n{config}")
    command = [
        sys.executable,
        "-c",
        "import sys; from sushy_tools.emulator.main import main; sys.exit(main())",
        "--interface",
        "127.0.0.1",
        "--port",
        str(port),
        "--config",
        str(workdir / "emulator.conf"),
        *args,
    ]
    with log.open("w") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, cwd=workdir)
    url = f"{scheme}://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                unavailable(f"sushy-emulator exited at start: {log.read_text()[-2000:]}")
            try:
                answer = httpx.get(f"{url}/redfish/v1", timeout=1, verify=False)
                if answer.status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                unavailable(f"sushy-emulator did not answer: {log.read_text()[-2000:]}")
            time.sleep(0.1)
        yield Emulator(url, log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def libvirt_bmc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    try:
        import bcrypt  # a dependency of sushy-tools, for its htpasswd file
    except ImportError:
        unavailable("bcrypt is not installed (sushy-tools brings it)")
    workdir = tmp_path_factory.mktemp("libvirt-bmc")
    digest = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
    (workdir / "htpasswd").write_text(f"{USER}:{digest}\n")
    auth = f"SUSHY_EMULATOR_AUTH_FILE = {str(workdir / 'htpasswd')!r}\n"
    yield from start_emulator(workdir, auth, "--libvirt-uri", "test:///default")


def self_signed_certificate(workdir: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 signed by its own key, as BMCs ship them."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bmc.test")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = workdir / "bmc.crt", workdir / "bmc.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest.fixture(scope="module")
def tls_bmc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    workdir = tmp_path_factory.mktemp("tls-bmc")
    cert, key = self_signed_certificate(workdir)
    yield from start_emulator(
        workdir,
        "",
        "--libvirt-uri",
        "test:///default",
        "--ssl-certificate",
        str(cert),
        "--ssl-key",
        str(key),
        scheme="https",
    )


@pytest.fixture(scope="module")
def slow_bmc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    workdir = tmp_path_factory.mktemp("slow-bmc")
    yield from start_emulator(workdir, SLOW_CONFIG)


def endpoint(
    bmc: Emulator, system: str = SYSTEM, username: str = USER, password: str = PASSWORD
) -> RedfishEndpoint:
    return RedfishEndpoint(url=bmc.url, system=system, username=username, password=password)


def read_power_state(bmc: Emulator, system: str) -> str:
    """The PowerState as the emulator serves it, read without opendrs's code."""
    response = httpx.get(
        f"{bmc.url}/redfish/v1/Systems/{system}", auth=(USER, PASSWORD), timeout=10
    )
    response.raise_for_status()
    return str(response.json()["PowerState"])


def test_power_off_then_on_round_trip(libvirt_bmc: Emulator) -> None:
    power = RedfishPower({"compute-1": endpoint(libvirt_bmc)}, QUICK)
    try:
        assert power.power_state("compute-1") == PowerState.ON
        power.power_off("compute-1")
        assert power.power_state("compute-1") == PowerState.OFF
        assert read_power_state(libvirt_bmc, SYSTEM) == "Off"
        power.power_on("compute-1")
        assert power.power_state("compute-1") == PowerState.ON
        assert read_power_state(libvirt_bmc, SYSTEM) == "On"
        power.power_off("compute-1", graceful=False)
        assert read_power_state(libvirt_bmc, SYSTEM) == "Off"
        power.power_on("compute-1")
    finally:
        power.close()


def test_a_repeated_switch_sends_no_reset(libvirt_bmc: Emulator) -> None:
    power = RedfishPower({"compute-2": endpoint(libvirt_bmc, SYSTEM)}, QUICK)
    try:
        power.power_on("compute-2")  # already on
        before = libvirt_bmc.resets()
        power.power_on("compute-2")
        assert libvirt_bmc.resets() == before
        power.power_off("compute-2")
        assert libvirt_bmc.resets() == before + 1
        power.power_off("compute-2")
        power.power_off("compute-2", graceful=False)
        assert libvirt_bmc.resets() == before + 1
        assert read_power_state(libvirt_bmc, SYSTEM) == "Off"
        power.power_on("compute-2")
        assert read_power_state(libvirt_bmc, SYSTEM) == "On"
    finally:
        power.close()


def test_a_system_named_by_path_or_by_name_is_found(libvirt_bmc: Emulator) -> None:
    # The emulator redirects a domain's name to its UUID, as some BMCs redirect ids.
    power = RedfishPower(
        {
            "by-path": endpoint(libvirt_bmc, f"/redfish/v1/Systems/{SYSTEM}"),
            "by-name": endpoint(libvirt_bmc, SYSTEM_NAME),
        },
        QUICK,
    )
    try:
        assert power.power_state("by-path") == PowerState.ON
        assert power.power_state("by-name") == PowerState.ON
    finally:
        power.close()


def test_an_unknown_system_is_named_with_the_ones_there_are(libvirt_bmc: Emulator) -> None:
    power = RedfishPower({"compute-9": endpoint(libvirt_bmc, "no-such-system")}, QUICK)
    with pytest.raises(DriverError) as caught:
        power.power_on("compute-9")
    message = str(caught.value)
    assert "BMC of compute-9" in message and libvirt_bmc.url in message
    assert "unknown system /redfish/v1/Systems/no-such-system" in message
    assert SYSTEM in message
    assert not caught.value.transient
    power.close()


def test_a_bmc_with_one_system_needs_none_named(libvirt_bmc: Emulator) -> None:
    power = RedfishPower({"compute-1": endpoint(libvirt_bmc, "")}, QUICK)
    assert power.power_state("compute-1") == PowerState.ON
    power.close()


def test_a_bmc_with_several_systems_needs_one_named(slow_bmc: Emulator) -> None:
    power = RedfishPower({"blade": RedfishEndpoint(url=slow_bmc.url)}, QUICK)
    with pytest.raises(DriverError, match=r"has 2 systems .*power\.hosts\.blade\.system"):
        power.power_state("blade")
    power.close()


def test_wrong_credentials_are_refused_by_name(libvirt_bmc: Emulator) -> None:
    power = RedfishPower({"compute-1": endpoint(libvirt_bmc, password="wrong")}, QUICK)
    with pytest.raises(DriverError) as caught:
        power.power_off("compute-1")
    message = str(caught.value)
    assert "BMC of compute-1" in message and libvirt_bmc.url in message
    assert f"refused the credentials of user {USER!r}" in message
    assert not caught.value.transient
    assert read_power_state(libvirt_bmc, SYSTEM) == "On"
    power.close()


def test_no_credentials_on_a_bmc_that_wants_them(libvirt_bmc: Emulator) -> None:
    power = RedfishPower({"compute-1": endpoint(libvirt_bmc, username="", password="")}, QUICK)
    with pytest.raises(DriverError, match="needs credentials"):
        power.power_state("compute-1")
    power.close()


def test_an_unreachable_bmc_names_host_and_url() -> None:
    url = f"http://127.0.0.1:{free_port()}"  # bound then released: nothing listens
    power = RedfishPower({"compute-7": RedfishEndpoint(url=url, system="1")}, QUICK)
    with pytest.raises(DriverError) as caught:
        power.power_off("compute-7")
    message = str(caught.value)
    assert f"BMC of compute-7 ({url})" in message
    assert "unreachable" in message
    assert caught.value.transient
    power.close()


def test_an_unconfigured_host_is_refused() -> None:
    power = RedfishPower({}, QUICK)
    assert not power.controls("compute-1")
    with pytest.raises(DriverError, match=r"no BMC is configured for host 'compute-1'"):
        power.power_on("compute-1")


def test_a_state_not_reached_in_time_is_a_transient_error(slow_bmc: Emulator) -> None:
    wait = PowerWait(timeout_s=1.0, poll_interval_s=0.2, request_timeout_s=10.0)
    power = RedfishPower({"slow": RedfishEndpoint(url=slow_bmc.url, system="slow-1")}, wait)
    assert power.power_state("slow") == PowerState.OFF
    with pytest.raises(DriverError) as caught:
        power.power_on("slow")
    message = str(caught.value)
    assert "BMC of slow" in message and slow_bmc.url in message
    assert "accepted ResetType On but PowerState is still Off after 1 s" in message
    assert caught.value.transient
    power.close()


def test_session_auth_on_a_bmc_without_sessions_says_so(slow_bmc: Emulator) -> None:
    session = RedfishEndpoint(
        url=slow_bmc.url, system="slow-1", username=USER, password=PASSWORD, auth="session"
    )
    power = RedfishPower({"slow": session}, QUICK)
    with pytest.raises(DriverError, match="has no session service"):
        power.power_state("slow")
    power.close()


def test_a_self_signed_bmc_needs_tls_settings(tls_bmc: Emulator) -> None:
    cert = tls_bmc.log.parent / "bmc.crt"
    power = RedfishPower(
        {
            "strict": RedfishEndpoint(url=tls_bmc.url, system=SYSTEM),
            "trusting": RedfishEndpoint(url=tls_bmc.url, system=SYSTEM, verify_tls=False),
            "pinned": RedfishEndpoint(url=tls_bmc.url, system=SYSTEM, verify_tls=str(cert)),
        },
        QUICK,
    )
    try:
        with pytest.raises(DriverError) as caught:
            power.power_state("strict")
        message = str(caught.value)
        assert f"BMC of strict ({tls_bmc.url}): TLS failed" in message
        assert "power.hosts.strict.verify_tls" in message
        assert not caught.value.transient
        power.power_off("trusting")
        assert power.power_state("pinned") == PowerState.OFF
        power.power_on("pinned")
        assert power.power_state("trusting") == PowerState.ON
    finally:
        power.close()


def test_libvirt_driver_powers_a_host_off_and_on_through_the_bmc(libvirt_bmc: Emulator) -> None:
    states = MemoryRepositories()
    states.upsert_hosts([Host("compute-2", 8, 8192, state=HostState.MAINTENANCE)])
    power = RedfishPower({"compute-2": endpoint(libvirt_bmc, SYSTEM)}, QUICK)
    actions = LibvirtActions({}, states, power=power, launch=lambda call: pytest.fail("no launch"))
    try:
        actions.set_host_state("compute-2", HostState.OFF, "consolidation")
        assert states.get_host("compute-2").state == HostState.OFF
        assert read_power_state(libvirt_bmc, SYSTEM) == "Off"
        actions.set_host_state("compute-2", HostState.OFF, "consolidation")  # a resumed plan
        actions.set_host_state("compute-2", HostState.ENABLED)
        assert states.get_host("compute-2").state == HostState.ENABLED
        assert read_power_state(libvirt_bmc, SYSTEM) == "On"
    finally:
        actions.close()
        power.close()
