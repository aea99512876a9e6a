"""Reporting: tables, figures and the report of an experiment."""
