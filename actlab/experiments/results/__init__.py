"""Results: the SQLite store of trials, their epochs, study membership, failures and findings."""
