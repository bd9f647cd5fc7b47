"""NCP's API and its wire: request fields, signing, the client and its answers, retries, reads.

Everything here speaks NCP's API and nothing else. It imports only the library's base modules
(``errors``, ``states``, ``config``, ``spec``), never the engine, the ledger or the inventory, so
what is NCP's and what is ours can be told apart at a glance (``tests/unit/test_architecture.py``).
"""
