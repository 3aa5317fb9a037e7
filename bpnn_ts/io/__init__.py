"""Readers and writers of data sets and foreign potential formats."""
