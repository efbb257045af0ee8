"""`cti campaign`: import with bad rows, DNC, lists, a simulated run, status and report."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from cti.app.cli import main

pytestmark = pytest.mark.dialer


def test_campaign_import_simulate_status_and_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "cti.db"
    leads = tmp_path / "spring.csv"
    rows = ["number,name,region,product", "13800000001,王小明,CN,gold", "bad,Nobody,,x"]
    rows += [f"138000000{i:02d},Lead {i},,x" for i in range(2, 60)]
    leads.write_text("\n".join(rows) + "\n", "utf-8")
    base = ["campaign", "--db", str(db)]

    assert main([*base, "import", "spring", str(leads), "--json"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["imported"] == 59
    assert f"{leads}:3: number 'bad' is not a phone number" in err

    dnc = tmp_path / "dnc.txt"
    dnc.write_text("13800000002\nnonsense\n", "utf-8")
    assert main([*base, "dnc", str(dnc), "--campaign", "spring"]) == 0
    out, err = capsys.readouterr()
    assert "1 numbers added to campaign 'spring'" in out
    assert ":2: 'nonsense' is not a phone number" in err

    assert main([*base, "start", "spring", "--simulate", "--seconds", "900", "--agents", "4"]) == 0
    run = json.loads(capsys.readouterr().out)
    assert run["dials"] > 0
    report = run["report"]
    assert report["dials"] == run["dials"]
    assert report["dials_outside_hours"] == 0
    assert report["dials_on_dnc"] == 0
    assert report["within_rules"] is True

    assert main([*base, "status", "spring", "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["state"] == "stopped"
    assert sum(status["attempts"].values()) == run["dials"]
    # without --json: tables a person reads (issue 21), with the same figures
    assert main([*base, "status", "spring"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("campaign 'spring': stopped, predictive, queue general")
    for state, count in status["leads"].items():
        assert re.search(rf"^  {state} +{count}$", text, re.MULTILINE), (state, text)
    for outcome, count in status["attempts"].items():
        assert re.search(rf"^  {outcome} +{count}$", text, re.MULTILINE), (outcome, text)
    assert re.search(r"^  spring +active +59 +0$", text, re.MULTILINE), text

    assert main([*base, "list", "spring", "spring", "pause"]) == 0
    assert "is paused" in capsys.readouterr().out
    assert main([*base, "pause", "spring"]) == 0
    assert main([*base, "report", "spring"]) == 0  # real time: the run is months away
    assert "within the rules" in capsys.readouterr().out


def test_campaign_errors_name_what_was_wrong(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["campaign", "--db", str(tmp_path / "cti.db")]
    assert main([*base, "status", "nothing"]) == 2
    assert "no campaign named 'nothing'" in capsys.readouterr().err
    no_number = tmp_path / "x.csv"
    no_number.write_text("name\nAnn\n", "utf-8")
    assert main([*base, "import", "c", str(no_number)]) == 2
    assert "no number column" in capsys.readouterr().err
    assert main([*base, "import", "c", str(tmp_path / "missing.csv")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_campaign_import_checks_numbers_as_customers_import_does(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """One phone validation for every importer (issue 21): ``12345`` is no lead, no
    do-not-call entry and no customer number; each names the line and the reason."""
    db = tmp_path / "cti.db"
    leads = tmp_path / "short.csv"
    leads.write_text("number,name\n12345,Short\n13800000001,Good\n", "utf-8")
    base = ["campaign", "--db", str(db)]
    assert main([*base, "import", "short", str(leads), "--json"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["imported"] == 1
    assert f"{leads}:2: number '12345' is not a phone number: '12345'" in err

    dnc = tmp_path / "dnc.txt"
    dnc.write_text("12345\n13800000002\n", "utf-8")
    assert main([*base, "dnc", str(dnc)]) == 0
    out, err = capsys.readouterr()
    assert "1 numbers added" in out
    assert f"{dnc}:1: '12345' is not a phone number: '12345'" in err

    customers = tmp_path / "customers.csv"
    customers.write_text("id,name,mobile\n1,Short,12345\n", "utf-8")
    assert main(["customers", "import", str(customers), "--db", str(db)]) != 0
    assert "'12345'" in capsys.readouterr().err


def test_campaign_import_refuses_a_queue_that_does_not_exist(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    leads = tmp_path / "leads.csv"
    leads.write_text("number\n13800000001\n", "utf-8")
    base = ["campaign", "--db", str(tmp_path / "cti.db")]
    assert main([*base, "import", "c", str(leads), "--queue", "nowhere"]) == 2
    assert "no queue named 'nowhere' (the queues: general)" in capsys.readouterr().err
    assert main([*base, "status", "c"]) == 2  # nothing was created
    capsys.readouterr()
    # without --queue: the configured queue (here the default configuration's only one)
    assert main([*base, "import", "c", str(leads)]) == 0
    capsys.readouterr()
    assert main([*base, "status", "c", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["queue"] == "general"
