"""Fixtures the billing tests share."""

import pytest


@pytest.fixture
def people(org, make_member):
    """Three admins: an amendment's author and its two approvers (`test_amended_plans.amend`)."""
    return [make_member("admin", org).user for _ in range(3)]
