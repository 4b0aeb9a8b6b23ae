"""Prefect: the flows that run the use cases on a schedule or from the Prefect UI and API."""
