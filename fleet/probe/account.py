"""The account as NCP shows it: do the keys work at this endpoint, which regions, how many servers.

The first call is a signed read (``getRegionList``): keys the gateway refuses, or an endpoint
that does not answer, stop the probe as bad configuration before anything else is sent. NCP's
Server API reports no account limit on servers; a create past it is refused (1015009, 10102),
so the probe counts the servers of each region and says so.
"""

from __future__ import annotations

from dataclasses import dataclass

from fleet.errors import ConfigError, NcpError, RetryableError
from fleet.ncp.client import NcpClient
from fleet.ncp.reads import Resource, count_servers, read

__all__ = ["LIMITS_NOTE", "Account", "survey_account"]

LIMITS_NOTE = (
    "NCP's Server API reports no account limit on servers: a create past it is refused with "
    "1015009 or 10102"
)


@dataclass(frozen=True, slots=True)
class Account:
    """What the account's reads show: its regions and the servers in each."""

    regions: tuple[str, ...]
    servers: dict[str, int]

    @property
    def note(self) -> str:
        """Return the servers per region, in words."""
        counts = ", ".join(f"{region} {n}" for region, n in self.servers.items())
        return f"servers by region: {counts or 'none'}; {LIMITS_NOTE}"


async def survey_account(client: NcpClient) -> Account:
    """Check the keys with a signed read; return the regions and their server counts.

    Raises:
        ConfigError: the gateway refused the keys, or the endpoint did not answer.
        NcpError: any other failure of NCP's.

    """
    try:
        regions = tuple(item.key for item in await read(client, Resource.REGION))
    except NcpError as exc:
        if exc.status in (401, 403):
            raise ConfigError(f"the gateway at {client.endpoint} refused the keys: {exc}") from None
        if isinstance(exc, RetryableError) and exc.status is None:
            raise ConfigError(f"the endpoint {client.endpoint} does not answer: {exc}") from None
        raise
    servers = {region: await count_servers(client, region=region) for region in regions}
    return Account(regions, servers)
