from django.urls import path

from .views import approval_page

app_name = "signing"
urlpatterns = [path("approve/<str:token>", approval_page, name="page")]
