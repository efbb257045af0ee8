"""Campaigns in the store: CSV lead lists with their errors, lists, attempts, DNC and
the compliance report."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from cti.errors import StoreError
from cti.models import Customer, PhoneNumber
from cti.store.campaigns import CampaignSettings, CampaignStore
from cti.store.database import Store
from cti.store.leads import lead_zones, parse_leads
from queue_engine.campaign import CampaignError, LeadState, Outcome

pytestmark = pytest.mark.dialer


def utc(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


NOON_NY = utc("2026-01-15T17:00")

GOOD_AND_BAD = """number,name,time_zone,region,product
+1 212 555 0101,Ann Lee,,,gold
+1 212 555 0102,"王小明",America/Chicago,,silver
not-a-number,Bad One,,,x
+1 212 555 0103,Zone Wrong,Mars/Olympus,,x
+1 212 555 0101,Twice,,,x
+1 212 555 0104,Too,Many,Cells,Here,x
,No Number,,,x
+1 605 555 0105,Split Region,,,bronze
+1 212 555 0106,Bad Region,,ZZ,x

+86 138 1234 5678,"Multi
Line",,CN,x
"""


def test_every_bad_row_is_reported_with_its_line_and_the_rest_kept() -> None:
    f = parse_leads(GOOD_AND_BAD, "US")
    assert [r.line for r in f.rows] == [2, 3, 9, 12]
    assert [(e.line, e.reason.split(" ")[0]) for e in f.errors] == [
        (4, "number"),
        (5, "unknown"),
        (6, "number"),
        (7, "6"),
        (8, "no"),
        (10, "unknown"),
    ]
    assert "not a phone number" in str(f.errors[0])
    assert "Mars/Olympus" in f.errors[1].reason
    assert "repeats line 2" in f.errors[2].reason
    assert "header has 5" in f.errors[3].reason
    assert "ZZ" in f.errors[5].reason
    assert str(f.errors[0]).startswith("line 4:")


def test_rows_keep_names_custom_fields_and_their_zones() -> None:
    f = parse_leads(GOOD_AND_BAD, "US")
    ann, wang, split, chinese = f.rows
    assert ann.e164 == "+12125550101"
    assert ann.zones == ("America/New_York",)
    assert ann.fields == {"product": "gold"}
    assert wang.name == "王小明"
    assert wang.zones == ("America/Chicago",)
    # area code 605 spans Mountain and Central time: both kept, the stricter hours win
    assert split.zones == ("America/Denver", "America/North_Dakota/Center")
    assert chinese.name == "Multi\nLine"
    assert chinese.zones == ("Asia/Shanghai",)


def test_a_file_without_a_number_column_is_refused_whole() -> None:
    with pytest.raises(CampaignError, match="no number column"):
        parse_leads("name,city\nAnn,Paris\n")
    with pytest.raises(CampaignError, match="empty"):
        parse_leads("")


def test_a_chinese_header_is_understood() -> None:
    f = parse_leads("号码,姓名\n13812345678,王小明\n", "CN")
    assert [(r.e164, r.name) for r in f.rows] == [("+8613812345678", "王小明")]


def test_zones_of_a_region_and_of_a_number() -> None:
    assert lead_zones("+12125550101") == ("America/New_York",)
    assert lead_zones("+12125550101", "Europe/London") == ("Europe/London",)
    # a region narrows the number's zones to its country's; unknown area -> whole country
    assert lead_zones("+8613812345678", region="cn") == ("Asia/Shanghai",)
    assert "America/New_York" in lead_zones("+18005550199", region="US")
    with pytest.raises(CampaignError, match="unknown region"):
        lead_zones("+12125550101", region="Atlantis")


@pytest.fixture
async def cs(tmp_path: Path) -> AsyncIterator[CampaignStore]:
    store = await Store.open(tmp_path / "cti.db")
    await store.add_customers(
        [
            Customer(
                id=7,
                name="Ann Lee",
                phones=(PhoneNumber(raw="212 555 0101", e164="+12125550101"),),
            )
        ]
    )
    campaigns = CampaignStore(store)
    await campaigns.create_campaign(CampaignSettings(name="spring", script="survey"), 0.0)
    try:
        yield campaigns
    finally:
        await store.close()


async def test_import_joins_leads_to_customers_and_load_builds_the_core(cs: CampaignStore) -> None:
    report = await cs.import_leads("spring", "jan", parse_leads(GOOD_AND_BAD, "US"), NOON_NY)
    assert (report.imported, report.matched_customers, len(report.errors)) == (4, 1, 6)
    record, core = await cs.load("spring", NOON_NY)
    assert record.settings.script == "survey"
    assert len(core.leads) == 4
    ann = next(lead for lead in core.leads.values() if lead.number == "+12125550101")
    assert ann.customer_id == 7
    with pytest.raises(StoreError, match="already has a list named 'jan'"):
        await cs.import_leads("spring", "jan", parse_leads(GOOD_AND_BAD, "US"), NOON_NY)
    with pytest.raises(StoreError, match="no campaign named 'autumn'"):
        await cs.load("autumn", NOON_NY)


async def test_attempts_survive_a_reload_and_paused_lists_stay_paused(cs: CampaignStore) -> None:
    await cs.import_leads("spring", "jan", parse_leads("number\n+12125550101\n", "US"), 0.0)
    await cs.import_leads("spring", "feb", parse_leads("number\n+12125550102\n", "US"), 0.0)
    await cs.set_list_state("spring", "feb", "paused")
    record, core = await cs.load("spring", NOON_NY)
    (dial,) = core.next_dials(NOON_NY, 5)  # feb is paused
    assert dial.lead.number == "+12125550101"
    attempt = await cs.start_attempt(record.campaign_id, dial.lead, dial.attempt, "c1", NOON_NY)
    lead = core.outcome(dial.lead.lead_id, Outcome.BUSY, NOON_NY + 5)
    await cs.end_attempt(attempt, Outcome.BUSY.value, NOON_NY + 5, lead)
    _, again = await cs.load("spring", NOON_NY + 10)
    reloaded = again.leads[dial.lead.lead_id]
    assert (reloaded.attempts, reloaded.state, reloaded.last_outcome) == (
        1,
        LeadState.PENDING,
        "busy",
    )
    assert again.next_dials(NOON_NY + 10, 5) == []  # busy retry not due; feb paused
    assert len(again.next_dials(NOON_NY + 5 + 900, 5)) == 1
    status = await cs.status("spring")
    assert status["attempts"] == {"busy": 1}
    assert [lst["state"] for lst in status["lists"]] == ["active", "paused"]


async def test_recycling_a_list_gives_exhausted_leads_new_attempts(cs: CampaignStore) -> None:
    await cs.import_leads("spring", "jan", parse_leads("number\n+12125550101\n", "US"), 0.0)
    _, core = await cs.load("spring", NOON_NY)
    lead = next(iter(core.leads.values()))
    lead.state, lead.attempts = LeadState.EXHAUSTED, 5
    await cs.save_leads([lead])
    assert await cs.recycle_list("spring", "jan", NOON_NY) == 1
    _, core = await cs.load("spring", NOON_NY)
    assert len(core.next_dials(NOON_NY, 1)) == 1
    assert (await cs.lists("spring"))[0].recycled == 1
    with pytest.raises(StoreError, match="no list named 'mar'"):
        await cs.recycle_list("spring", "mar", NOON_NY)


async def test_do_not_call_lists_reach_the_core(cs: CampaignStore) -> None:
    await cs.import_leads(
        "spring", "jan", parse_leads("number\n+12125550101\n+12125550102\n", "US"), 0.0
    )
    await cs.add_do_not_call(["+12125550101"], 0.0)
    await cs.add_do_not_call(["+12125550102"], 0.0, campaign="spring")
    _, core = await cs.load("spring", NOON_NY)
    assert core.next_dials(NOON_NY, 5) == []
    assert core.refusals.do_not_call == 2


async def test_the_compliance_report_recounts_from_the_attempts(cs: CampaignStore) -> None:
    numbers = "\n".join(f"+1212555{i:04d}" for i in range(1, 41))
    await cs.import_leads("spring", "jan", parse_leads("number\n" + numbers + "\n", "US"), 0.0)
    record, core = await cs.load("spring", NOON_NY)
    for i, dial in enumerate(core.next_dials(NOON_NY, 40)):
        outcome = Outcome.ABANDONED if i == 0 else Outcome.CONNECTED
        attempt = await cs.start_attempt(record.campaign_id, dial.lead, 1, f"c{i}", NOON_NY)
        lead = core.outcome(dial.lead.lead_id, outcome, NOON_NY + 10)
        await cs.end_attempt(attempt, outcome.value, NOON_NY + 10, lead)
    report = await cs.compliance("spring", NOON_NY + 60)
    d = report.to_dict()
    assert d["days"] == [
        {"day": "2026-01-15", "live_answers": 40, "abandoned": 1, "abandon_rate": 0.025}
    ]
    assert (d["dials"], d["dials_outside_hours"], d["dials_on_dnc"]) == (40, 0, 0)
    assert d["within_rules"] is True
    # a dial the rules would have refused shows up: 23:00 in New York, to a DNC number
    await cs.add_do_not_call(["+12125559999"], 0.0)
    lead = next(iter(core.leads.values()))
    lead.number = "+12125559999"
    await cs.start_attempt(record.campaign_id, lead, 2, "bad", utc("2026-01-16T04:00"))
    d = (await cs.compliance("spring", NOON_NY + 60)).to_dict()
    assert (d["dials_outside_hours"], d["dials_on_dnc"], d["within_rules"]) == (1, 1, False)
