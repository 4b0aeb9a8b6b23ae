"""The local servers behind `tailor store` and `tailor prefect`: process management, not registry logic."""
