"""Reporting: tables, figures and the report of an experiment; loggers that show each run."""
