"""What a run did: the results file, and the summary every report reads."""
