from django.urls import path

from . import api

urlpatterns = [
    path("predict", api.PredictView.as_view(), name="predict"),
]
