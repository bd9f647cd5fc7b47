"""fleet probe against the simulator told known values, on one fake clock: what it reports.

The simulator and the probe share one ``FakeClock`` (monotonic and wall), so every wait of the
probe is a step of that clock and the figures do not depend on the machine's speed: a test
takes well under a second of real time for minutes of the probe's.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path

import jsonschema
import pytest

from fleet.config import Credentials
from fleet.errors import ConfigError
from fleet.ncp.client import NcpClient, RetryPolicy
from fleet.ncp.ratelimit import Limiter
from fleet.options import ProbeOptions
from fleet.probe import (
    DescriptionUnit,
    DuplicateNames,
    NameFilter,
    ProbeResult,
    Seams,
    probe,
    probe_row,
    write_profile,
)
from fleet.probe.create import probe_name
from fleet.probe.intent import Intent, read_intent, write_intent
from fleet.simulator import RunningSimulator, SimulatorConfig, running_simulator
from fleet.simulator.profile import load_profile_settings
from tests.support.clock import FakeClock
from tests.support.engine import specs
from tests.support.keys import SIM_ACCESS, SIM_SECRET
from tests.support.simulator import NOON_KST_2024, sim_config

SCHEMA = json.loads(
    (Path(__file__).resolve().parents[2] / "schemas" / "probe-profile.schema.json").read_text()
)
POLL = 1.0  # the probe's poll: the lag's and the boot's resolution


def known(**changes: object) -> SimulatorConfig:
    """The issue's account: lag 7 s, boot 6 s, 50 reads/s with a burst of 5, names refused."""
    values: dict[str, object] = {
        "rate": 50.0,
        "burst": 5,
        "list_lag": 7.0,
        "create_seconds": 2.4,
        "setup_seconds": 3.6,
        "stop_seconds": 2.0,
        "terminate_seconds": 2.0,
        "duplicate_names": "refused",
    }
    return sim_config(**{**values, **changes})


@contextlib.contextmanager
def simulated(config: SimulatorConfig, clock: FakeClock) -> Iterator[RunningSimulator]:
    """A threaded simulator whose clocks, monotonic and wall, are both ``clock``."""
    with running_simulator(config, clock=clock, wall_clock=clock) as sim:
        yield sim


async def probed(
    sim: RunningSimulator, clock: FakeClock, tmp_path: Path, *, create: bool = True, **options
) -> ProbeResult:
    """Probe the simulator on the fake clock (creating from a valid row unless told not to)."""
    client = NcpClient(
        Credentials(SIM_ACCESS, SIM_SECRET, "test"),
        sim.url,
        limiter=Limiter(),
        wall_clock=clock,
        clock=clock,
        sleep=clock.sleep,
        retry=RetryPolicy(base=0.01, cap=0.1),
    )
    settings = {"output": str(tmp_path / "profile.json"), "intent": str(tmp_path / "intent.json")}
    opts = ProbeOptions(**{**settings, "poll_interval": POLL, **options})
    row = probe_row(specs(1)[0]) if create else None
    async with client:
        return await probe(
            client, opts, row, Seams(clock=clock, wall_clock=clock, sleep=clock.sleep)
        )


def servers_left(sim: RunningSimulator) -> list[dict[str, object]]:
    """The servers the simulator still holds, listed or not."""
    return sim.state()["servers"]


@pytest.fixture
def clock() -> FakeClock:
    """One fake clock for the simulator and the probe, at a plausible wall time."""
    return FakeClock(NOON_KST_2024)


@pytest.mark.anyio
async def test_the_probe_reports_the_known_figures_and_leaves_nothing(clock, tmp_path):
    """Lag 7 s, boot 6 s, 50/s burst 5, names refused: each reported, 1 server made and removed."""
    with simulated(known(), clock) as sim:
        result = await probed(sim, clock, tmp_path)
        state = sim.state()
    p = result.profile
    assert p.list_lag_s is not None and 7.0 <= p.list_lag_s <= 7.0 + POLL
    # NCP's status is seen only through its listing: a server RUN before it is listed (boot 6 s,
    # lag 7 s) shows RUN at its first listing, and the figure is what a client can see.
    assert p.boot_s is not None and 6.0 - POLL <= p.boot_s <= 7.0 + POLL
    assert p.rate_per_s == pytest.approx(50.0, rel=0.05)
    assert p.burst == 5
    assert p.throttle is not None and (p.throttle.status, p.throttle.code) == (429, "410")
    assert p.throttle.retry_after is None
    assert p.duplicate_names == DuplicateNames.REFUSED and "1104010" in p.notes["duplicate_names"]
    assert p.name_filter == NameFilter.SUBSTRING
    assert p.description_unit == DescriptionUnit.BYTES
    assert p.clock_offset_s == pytest.approx(0.0, abs=0.2)
    assert len(p.created) == 1 and p.removed == p.created
    assert result.complete and not result.unmeasured
    assert state["counters"]["created"] <= 2 and not state["servers"]
    assert not (tmp_path / "intent.json").exists()  # everything it recorded is gone
    jsonschema.validate(p.document(), SCHEMA)


@pytest.mark.anyio
async def test_a_clock_ahead_of_ours_is_measured_from_the_date_header(clock, tmp_path):
    """A gateway 3.4 s ahead: the offset comes back 3.4 s, within the answers' precision."""
    with simulated(known(clock_offset=3.4), clock) as sim:
        result = await probed(sim, clock, tmp_path, create=False, rate_probe=False)
    assert result.profile.clock_offset_s == pytest.approx(3.4, abs=0.15)
    assert result.complete  # nothing else was set out for


@pytest.mark.anyio
async def test_allowed_duplicates_make_the_second_server_and_both_go(clock, tmp_path):
    """Duplicates allowed: two servers (never more), both removed; an exact filter is told so."""
    config = known(duplicate_names="allowed", name_filter="exact")
    with simulated(config, clock) as sim:
        result = await probed(sim, clock, tmp_path)
        state = sim.state()
    p = result.profile
    assert p.duplicate_names == DuplicateNames.ALLOWED
    assert p.name_filter == NameFilter.EXACT
    assert len(p.created) == 2 and sorted(p.removed) == sorted(p.created)
    assert state["counters"]["created"] == 2 and not state["servers"]


@pytest.mark.anyio
async def test_a_profile_makes_the_simulator_behave_as_measured(clock, tmp_path):
    """Probe A and write its profile; a simulator from that file, probed, gives back A's figures."""
    first = known(
        list_lag=4.0,
        create_seconds=4.0,
        setup_seconds=6.0,
        rate=20.0,
        burst=8,
        retry_after=True,
        throttle_code="420",
        name_filter="exact",
        clock_offset=-2.5,
    )
    with simulated(first, clock) as sim:
        measured = (await probed(sim, clock, tmp_path / "a")).profile
    write_profile(measured, tmp_path / "measured.json")
    again = dataclasses.replace(sim_config(), **load_profile_settings(tmp_path / "measured.json"))
    with simulated(again, clock) as sim:
        replayed = (await probed(sim, clock, tmp_path / "b")).profile
    assert replayed.list_lag_s == pytest.approx(measured.list_lag_s, abs=POLL)
    assert replayed.boot_s == pytest.approx(measured.boot_s, abs=POLL)
    assert replayed.rate_per_s == pytest.approx(measured.rate_per_s, rel=0.05)
    assert replayed.burst == pytest.approx(measured.burst, abs=1)
    assert replayed.throttle == measured.throttle
    assert measured.throttle is not None and measured.throttle.code == "420"
    for same in ("duplicate_names", "name_filter", "description_unit"):
        assert replayed.figure(same) == measured.figure(same)
    assert replayed.clock_offset_s == pytest.approx(measured.clock_offset_s, abs=0.2)
    assert measured.boot_s == pytest.approx(10.0, abs=POLL)


@pytest.mark.anyio
@pytest.mark.parametrize("answered", [False, True])
async def test_an_earlier_probes_leftovers_are_found_and_removed(clock, tmp_path, answered):
    """A probe killed after a create (its answer recorded or not): the next one removes it."""
    run = "0badc0de"
    with simulated(known(list_lag=3.0, duplicate_names="allowed"), clock) as sim:
        client = NcpClient(
            Credentials(SIM_ACCESS, SIM_SECRET, "t"), sim.url, wall_clock=clock, clock=clock
        )
        params = [*probe_row(specs(1)[0]).params, ("serverName", probe_name(run))]
        params.append(("serverDescription", f"fleet probe server fleetprobe-{run}"))
        intent = Intent(sim.url, run, "", window=30.0).sending(probe_name(run), clock())
        write_intent(tmp_path / "intent.json", intent)
        async with client:
            made = await client.create_server(params)
            if answered:  # else the intent still says "unanswered": found by name and marker
                write_intent(
                    tmp_path / "intent.json", intent.answered((made.servers[0].instance_no,))
                )
            # Someone else's server under the same name, without the probe's marker: left alone.
            await client.create_server([*params[:-1], ("serverDescription", "mine")])
        result = await probed(sim, clock, tmp_path, create=False, rate_probe=False)
        names = [s["serverName"] for s in servers_left(sim)]
    assert len(result.profile.removed) == 1
    assert names == [probe_name(run)]  # the unmarked one stays
    assert read_intent(tmp_path / "intent.json") is None


@pytest.mark.anyio
async def test_a_row_ncp_refuses_makes_nothing_and_says_why(clock, tmp_path):
    """Every create refused (a VPC NCP does not hold): no server, the create figures null."""
    with simulated(known(), clock) as sim:
        row = probe_row(specs(1, vpc="99999")[0])
        client = NcpClient(
            Credentials(SIM_ACCESS, SIM_SECRET, "t"),
            sim.url,
            limiter=Limiter(),
            wall_clock=clock,
            clock=clock,
            sleep=clock.sleep,
        )
        opts = ProbeOptions(
            output=str(tmp_path / "p.json"), intent=str(tmp_path / "i.json"), rate_probe=False
        )
        async with client:
            result = await probe(client, opts, row, Seams(clock, clock, clock.sleep))
        assert sim.state()["counters"]["created"] == 0
    assert "list_lag_s" in result.unmeasured and not result.complete
    assert "refused every create" in result.profile.notes["create"]
    assert all("refused every create" in result.profile.notes[f] for f in result.unmeasured)


@pytest.mark.anyio
async def test_an_unlimited_gateway_leaves_rate_and_burst_null_with_the_reason(clock, tmp_path):
    """No throttle within the budget: rate, burst and throttle null, the notes say why."""
    with simulated(known(rate=None, burst=None), clock) as sim:
        result = await probed(sim, clock, tmp_path, create=False)
        calls = sim.state()["counters"]["by_action"]["getRegionList"]
    p = result.profile
    assert (p.rate_per_s, p.burst, p.throttle) == (None, None, None)
    assert "no read was throttled" in p.notes["rate_per_s"]
    assert set(result.unmeasured) == {"rate_per_s", "burst", "throttle"}
    assert all(p.notes[f] for f in result.unmeasured)  # each null says why
    assert calls <= ProbeOptions().max_reads + 20  # the budget, and a few reads of its own


@pytest.mark.anyio
async def test_keys_the_gateway_refuses_stop_the_probe_as_configuration(clock, tmp_path):
    """Wrong secret: ConfigError (exit 2), naming the endpoint, never the secret."""
    with simulated(known(), clock) as sim:
        client = NcpClient(
            Credentials(SIM_ACCESS, "not-the-secret", "t"), sim.url, wall_clock=clock, clock=clock
        )
        opts = ProbeOptions(intent=str(tmp_path / "i.json"))
        with pytest.raises(ConfigError, match="refused the keys") as caught:
            async with client:
                await probe(client, opts, None, Seams(clock, clock, clock.sleep))
    assert "not-the-secret" not in str(caught.value)
