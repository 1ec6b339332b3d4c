"""Reports users open outside the Dagster UI: offline HTML tearsheets and their pictures."""
