"""Fixtures for every test tree live in imgtag_dev.testing (one real stack per session)."""

pytest_plugins = ["imgtag_dev.testing", "imgtag_dev.browser"]
