"""The product's URLs plus the yardstick (bench only): /bench/yardstick/counterparties."""

from django.urls import include, path
from rest_framework.routers import SimpleRouter

from bench.yardstick import YardstickCounterpartyViewSet

router = SimpleRouter()
router.trailing_slash = "/?"  # the product's routers answer with and without the slash
router.register("bench/yardstick/counterparties", YardstickCounterpartyViewSet, basename="yardstick-counterparty")

urlpatterns = [*router.urls, path("", include("config.urls"))]
