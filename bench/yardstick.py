"""The yardstick of issue 15: a plain DRF + simplejwt `ModelViewSet` over the counterparty table.

Served only by the benchmark (bench/yardstick_settings.py points gunicorn at
bench/yardstick_urls.py); the product never routes to it. It is what a plain DRF service would
write: simplejwt's own `JWTAuthentication` (one user query per request), `IsAuthenticated`,
`PageNumberPagination` with 100 a page, a `ModelSerializer` of the counterparty collection's
default fields, no throttling, no filters, no sort parameter. The organization is the token's
`org` claim (the product's tokens carry it), so it lists the same 10,000 rows as
`/api/v1/counterparties`.
"""

from rest_framework import pagination, permissions, renderers, serializers, viewsets
from rest_framework_simplejwt.authentication import JWTAuthentication

from contracts.models import Counterparty


class YardstickCounterpartySerializer(serializers.ModelSerializer):
    class Meta:
        model = Counterparty
        fields = ["id", "name", "kind", "reference", "source_id", "created_at", "updated_at"]


class YardstickPagination(pagination.PageNumberPagination):
    page_size = 100


class YardstickCounterpartyViewSet(viewsets.ModelViewSet):
    serializer_class = YardstickCounterpartySerializer
    authentication_classes = [JWTAuthentication]
    permission_classes = [permissions.IsAuthenticated]
    renderer_classes = [renderers.JSONRenderer]
    pagination_class = YardstickPagination
    throttle_classes = []
    filter_backends = []

    def get_queryset(self):
        return Counterparty.objects.filter(organization__slug=self.request.auth["org"]).order_by("name", "id")
