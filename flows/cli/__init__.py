"""The command line: its commands, their flags, and how they print (apart from the flows)."""
