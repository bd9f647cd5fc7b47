"""The probe's pure parts: clock bounds, rate in virtual time, removal steps, row, profile."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import jsonschema
import pytest

from fleet.errors import ConfigError, RetryableError, ThrottledError
from fleet.ncp.parameters import MAX_DESCRIPTION_BYTES
from fleet.options import profile_defaults
from fleet.ownership import ProbeMarker
from fleet.planned import PlannedServer
from fleet.probe import DescriptionUnit, DuplicateNames, NameFilter, Profile, Throttle
from fleet.probe.clock import Sample, estimate
from fleet.probe.create import descriptions, probe_row
from fleet.probe.intent import Intent, read_intent, write_intent
from fleet.probe.profile import FIGURES, KEYS, load_profile, write_profile
from fleet.probe.rate import RateProbe
from fleet.simulator import SimulatorConfig
from fleet.simulator.gateway import TokenBucket
from fleet.simulator.profile import profile_settings
from tests.support.virtual_time import run_virtual

SCHEMA = json.loads(
    (Path(__file__).resolve().parents[2] / "schemas" / "probe-profile.schema.json").read_text()
)


# --- the clock offset ----------------------------------------------------------------------------


def test_answers_over_a_second_pin_the_offset_to_their_spacing():
    """NCP 2.3 s ahead, answers an eighth of a second apart: 2.3 within a sixteenth."""
    times = [100 + i / 8 for i in range(9)]
    samples = [Sample(t, t + 0.01, float(int(t + 0.005 + 2.3))) for t in times]
    found = estimate(samples)
    assert found is not None and found.seconds == pytest.approx(2.3, abs=0.07)
    assert found.within <= 0.07


def test_one_answer_bounds_the_offset_to_a_second_and_its_wait():
    """One answer read 0.2 s after sending: within (1 + 0.2) / 2 of the middle."""
    found = estimate([Sample(100.0, 100.2, 95.0)])
    assert found is not None and (found.seconds, found.within) == pytest.approx((-4.6, 0.6))


def test_answers_that_disagree_fall_back_to_their_median():
    """A Date from a cache (bounds that cross): the median middle, as wide as they spread."""
    samples = [Sample(100.0, 100.1, 105.0), Sample(101.0, 101.1, 106.0), Sample(102.0, 102.1, 90.0)]
    found = estimate(samples)
    assert found is not None and found.seconds == pytest.approx(5.45) and found.within > 5


def test_no_date_header_no_offset():
    """No answer carried a Date: no figure."""
    assert estimate([]) is None


# --- the read rate and burst ---------------------------------------------------------------------


def measure(rate: float | None, burst: float, *, latency: float = 0.0, max_calls: int = 300):
    """Measure a gateway's bucket in virtual time; return the finding and the reads it made."""

    async def main():
        loop = asyncio.get_running_loop()
        bucket = TokenBucket(rate, burst, loop.time) if rate else None

        async def read():
            await asyncio.sleep(latency / 2)  # on the way to the gateway
            passed = bucket is None or bucket.take() == 0
            await asyncio.sleep(latency / 2)
            return None if passed else ThrottledError("Throttle Limited", status=429, code="410")

        probe = RateProbe(
            read, clock=loop.time, sleep=asyncio.sleep, max_calls=max_calls, max_seconds=10.0
        )
        return await probe.run()

    return run_virtual(main)


@pytest.mark.parametrize(
    ("rate", "burst", "latency"),
    [
        (50, 5, 0.0),  # the account
        (50, 5, 0.03),  # the same across a network: the refill during the burst is taken off
        (10, 3, 0.0),
        (200, 20, 0.02),
        (100, 10, 0.05),
        (3, 5, 0.0),  # a slow gateway: longer steps
    ],
)
def test_the_rate_and_burst_of_a_token_bucket_are_found_on_budget(rate, burst, latency):
    """Within 5% (and one read of the burst), in at most max_reads reads."""
    found = measure(rate, burst, latency=latency)
    assert found.rate == pytest.approx(rate, rel=0.05)
    assert found.burst == pytest.approx(burst, abs=1)
    assert found.throttle == Throttle(429, "410", None)
    assert found.calls <= 300


def test_a_gateway_that_never_throttles_leaves_rate_and_burst_unmeasured():
    """No 429 within half the budget: no figure, a lower bound in the note."""
    found = measure(None, 0, latency=0.01)
    assert (found.rate, found.burst, found.throttle) == (None, None, None)
    assert "no read was throttled" in found.notes["rate_per_s"] and found.calls <= 150


def test_reads_that_fail_otherwise_stop_the_measurement():
    """A 503 in a volley: nothing is measured, and the note says which error."""

    async def main():
        loop = asyncio.get_running_loop()

        async def read():
            return RetryableError("Endpoint Error", status=503, code="500")

        probe = RateProbe(read, clock=loop.time, sleep=asyncio.sleep, max_calls=300, max_seconds=5)
        return await probe.run()

    found = run_virtual(main)
    assert found.rate is None and "Endpoint Error" in found.notes["rate_per_s"]
    assert found.calls == 16  # one volley


# --- removing what was made ---------------------------------------------------------------------


# --- the row a probe sends ---------------------------------------------------------------------


def test_the_probe_sends_the_smallest_server_a_row_allows():
    """Where it goes and what it runs are kept; what costs, lasts or collides is left out."""
    spec = PlannedServer(
        "web-001",
        "inv.csv",
        4,
        (
            ("regionCode", "JPN"),
            ("serverImageNo", "25495367"),
            ("serverSpecCode", "s2-g3"),
            ("vpcNo", "3001"),
            ("subnetNo", "3101"),
            ("serverCreateCount", "1"),
            ("serverName", "web-001"),
            ("serverDescription", "web tier"),
            ("associateWithPublicIp", "true"),
            ("isProtectServerTermination", "true"),
            ("feeSystemTypeCode", "FXSUM"),
            ("initScriptNo", "77"),
            ("loginKeyName", "my-key"),
            ("networkInterfaceList.1.networkInterfaceOrder", "1"),
            ("networkInterfaceList.1.subnetNo", "3102"),
            ("networkInterfaceList.2.networkInterfaceOrder", "0"),
            ("networkInterfaceList.2.ip", "10.0.0.9"),
            ("networkInterfaceList.2.accessControlGroupNoList.1", "3201"),
            ("blockStorageMappingList.1.order", "1"),
            ("blockStorageMappingList.1.blockStorageSize", "100"),
        ),
    )
    row = probe_row(spec)
    assert row.region == "JPN" and row.source == "inv.csv:4"
    assert dict(row.params) == {
        "regionCode": "JPN",
        "serverImageNo": "25495367",
        "serverSpecCode": "s2-g3",
        "vpcNo": "3001",
        "subnetNo": "3101",
        "loginKeyName": "my-key",
        "networkInterfaceList.1.networkInterfaceOrder": "0",
        "networkInterfaceList.1.accessControlGroupNoList.1": "3201",
    }
    left = " ".join(row.left_out)
    for name in ("associateWithPublicIp", "feeSystemTypeCode", "blockStorageMappingList"):
        assert name in left


def test_the_descriptions_tell_bytes_from_characters():
    """Past 1000 bytes both; the second within 1000 characters; each ends with the marker."""
    marker = ProbeMarker("5f3a9c2e")
    over_ascii, over_hangul, short, plain = descriptions(marker)
    assert len(over_ascii.text) > MAX_DESCRIPTION_BYTES
    assert len(over_hangul.text.encode()) > MAX_DESCRIPTION_BYTES >= len(over_hangul.text)
    assert len(short.text.encode()) < 100 and not short.text.isascii() and plain.text.isascii()
    assert all(ProbeMarker.parse(d.text) == marker for d in (over_ascii, over_hangul, short, plain))
    assert (over_hangul.taken, short.taken) == (DescriptionUnit.CHARACTERS, DescriptionUnit.BYTES)


# --- the profile --------------------------------------------------------------------------------


FULL = Profile(
    measured_at="2024-01-01T03:00:00Z",
    endpoint="https://ncloud.apigw.ntruss.com",
    clock_offset_s=-0.41,
    rate_per_s=49.8,
    burst=5,
    throttle=Throttle(429, "410", 1.0),
    list_lag_s=7.0,
    boot_s=66.0,
    duplicate_names=DuplicateNames.REFUSED,
    name_filter=NameFilter.SUBSTRING,
    description_unit=DescriptionUnit.BYTES,
    created=("10000001",),
    removed=("10000001",),
    notes={"probe": "230 calls in 95.0 s"},
)


def test_a_profile_is_written_read_back_and_valid_by_its_schema(tmp_path):
    """Keys exactly the issue's (and notes), in order; the schema takes it; it reads back equal."""
    document = FULL.document()
    assert tuple(document) == KEYS
    jsonschema.validate(document, SCHEMA)
    jsonschema.validate(Profile("2024-01-01T03:00:00Z", "http://127.0.0.1:1").document(), SCHEMA)
    write_profile(FULL, tmp_path / "p.json")
    assert load_profile(tmp_path / "p.json") == FULL


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"burst": 0}, "burst"),
        ({"rate_per_s": "fast"}, "rate_per_s"),
        ({"name_filter": "prefix"}, "name_filter"),
        ({"throttle": {"status": 429}}, "throttle"),
        ({"created": [10000001]}, "created"),
        ({"extra": 1}, "unknown key 'extra'"),
    ],
)
def test_a_profile_that_breaks_the_schema_is_refused_naming_the_key(tmp_path, change, problem):
    """Read back by provision: every bad key named, as ConfigError; the schema agrees it is bad."""
    document = {**FULL.document(), **change}
    (tmp_path / "p.json").write_text(json.dumps(document))
    with pytest.raises(ConfigError, match=problem):
        load_profile(tmp_path / "p.json")
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(document, SCHEMA)


def test_the_schema_lists_the_figures_the_code_writes():
    """One list of keys: the schema's required keys are the profile's."""
    assert tuple(SCHEMA["required"]) == KEYS and set(FIGURES) < set(KEYS)


@pytest.mark.parametrize(
    ("lag", "rate", "boot", "taken"),
    [
        (7.0, 49.8, 66.0, {"settle": 37.0, "start_rate": 49.8, "poll_interval": 6.6}),
        (45.0, None, 6.0, {"settle": 90.0, "poll_interval": 1.0}),  # twice a long lag
        (None, 120.0, 900.0, {"start_rate": 120.0, "poll_interval": 10.0}),
        (0.0, None, None, {"settle": 30.0}),  # never under the margin
    ],
)
def test_a_profile_gives_provision_its_defaults(lag, rate, boot, taken):
    """Settle above the lag with a margin, the starting rate, the status poll; none unmeasured."""
    assert {t.option: t.value for t in profile_defaults(lag, rate, boot)} == taken


def test_the_simulator_plays_each_figure_of_a_profile():
    """Each figure becomes its settings; a null figure changes nothing."""
    settings = profile_settings(FULL.document())
    assert settings == {
        "list_lag": 7.0,
        "create_seconds": 26.4,
        "setup_seconds": 39.6,
        "rate": 49.8,
        "burst": 5.0,
        "clock_offset": -0.41,
        "throttle_status": 429,
        "throttle_code": "410",
        "retry_after": True,
        "duplicate_names": "refused",
        "name_filter": "substring",
    }
    SimulatorConfig(**settings)  # every one a valid setting
    assert profile_settings(Profile("t", "e").document()) == {}


def test_the_intent_survives_the_process(tmp_path):
    """What a probe sends is on disk before it goes, answered or not."""
    path = tmp_path / "intent.json"
    intent = Intent("https://x", "5f3a9c2e", "KR").sending("fleetprobe-5f3a9c2e-a", 1000.0)
    write_intent(path, intent)
    assert read_intent(path) == intent and intent.unanswered
    answered = intent.answered(("10000001",))
    write_intent(path, answered)
    assert read_intent(path) == answered and not answered.unanswered
    path.write_text("{")
    with pytest.raises(ConfigError, match="earlier fleet probe"):
        read_intent(path)
