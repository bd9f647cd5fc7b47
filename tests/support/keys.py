"""The tests' API keys: fake, and never a real account's.

Three pairs, kept apart because tests pin their values: the signing test vectors' (NCP's format),
the simulator's under the engine and fleet's own commands, and the simulator's own API tests'.
"""

from __future__ import annotations

# The signing test vectors' keys; also those of clients whose answers a test makes up.
ACCESS = "AKIAEXAMPLEACCESSKEY1"
SECRET = "EXAMPLEsecretKEY0123456789abcdefghijklmn"
# The simulator's keys where the engine, a flow or a fleet command calls it (``sim_config``).
SIM_ACCESS = "sim-access"
SIM_SECRET = "sim-secret-0123456789"
# The keys of the simulator's BASE settings, whose own tests sign their calls by hand.
BASE_ACCESS = "AKSIMTEST000000000001"
BASE_SECRET = "SKsimtest0123456789abcdefghijklmnopqrst"
