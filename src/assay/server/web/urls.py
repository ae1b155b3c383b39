from django.urls import path

from . import views

app_name = "web"
urlpatterns = [
    path("", views.challenge_list, name="challenge-list"),
    path("healthz", views.healthz, name="healthz"),
]
