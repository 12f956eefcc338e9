from django.apps import AppConfig


class VisitsConfig(AppConfig):
    """Planned visits as a contract's schedule (issue 13): the plans' API and the visits listing,
    which reads the jobs (workorders) and the hours logged against them (ledger). It sits at the
    top of the layers; the plans themselves and their generation live in `workorders`."""

    name = "visits"
    verbose_name = "Planned visits"

    def ready(self):
        from events.visibility import restrict

        from .api import VisitPlanViewSet

        restrict("visit_plan.", VisitPlanViewSet.read_role)
