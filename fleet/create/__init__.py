"""Creating: the engine, its claims ahead of the creates, settling what is unknown, the stages."""
