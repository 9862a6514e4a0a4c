"""A continuous audit made through the demo's API is run by the demo's loop in
simulated time, every interval, each run's plan linked to it, until cancelled."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from opendrs.config import Settings
from opendrs.domain.audit import AuditState
from opendrs.wiring import build_app, build_system


def test_the_demo_runs_an_api_continuous_audit_on_simulated_time(tmp_path: Path) -> None:
    settings = Settings.model_validate(
        {
            "database": {"url": f"sqlite:///{tmp_path}/demo.db"},
            "history": {"enabled": False},
            "cloud": {"sim": {"hosts": 6, "instances": 20}},
        }
    )
    system = build_system(settings)
    try:
        client = TestClient(build_app(system, status=lambda: {}))
        began = system.clock.now()
        response = client.post(
            "/v1/audits",
            json={"goal": "server_consolidation", "audit_type": "continuous", "interval": 600},
        )
        assert response.status_code == 200, response.text
        audit = response.json()["audit"]
        assert audit["next_run_at"] == began  # simulated time, not the wall clock

        system.loop.step()  # 300 simulated seconds: the first run, at the tick ending it
        first = system.store.get_audit(audit["id"])
        assert first.state == AuditState.ONGOING
        assert first.last_run_at == began + 300
        assert first.next_run_at == first.last_run_at + 600
        for _ in range(2):
            system.loop.step()
        second = system.store.get_audit(audit["id"])
        assert second.last_run_at == first.next_run_at

        assert client.patch(f"/v1/audits/{audit['id']}", json={"state": "CANCELLED"}).is_success
        for _ in range(3):
            system.loop.step()
        assert system.store.get_audit(audit["id"]).last_run_at == second.last_run_at
    finally:
        system.close()
