"""After the creates: the polling loop, waiting until RUN, and where each server is reached."""
