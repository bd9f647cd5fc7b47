"""fleet: batch server provisioning for NAVER Cloud Platform."""
