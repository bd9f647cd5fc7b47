"""Before creating: the inventory against the ledger, NCP and its references; a change each."""
