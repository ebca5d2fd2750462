"""The product's URLs plus `POST /bench/ceiling` (bench.ceiling), for bench.settings only."""

from django.urls import path

from deplite.urls import urlpatterns as product_urlpatterns

from .ceiling import CeilingView

urlpatterns = [path("bench/ceiling", CeilingView.as_view()), *product_urlpatterns]
