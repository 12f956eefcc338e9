"""The reports app stores nothing: it reads every app below it. One proxy model gives the staff
dashboard ("SLA overview") its place in the admin, per organization."""

from tenancy.models import Organization


class SlaOverview(Organization):
    class Meta:
        proxy = True
        verbose_name = "SLA overview"
        verbose_name_plural = "SLA overview"
