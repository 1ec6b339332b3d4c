"""Small pictures and tables for the Dagster UI and reports (no dagster import here)."""
