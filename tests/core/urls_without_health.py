"""A urlconf with no routes, for the per-request urlconf test."""
urlpatterns: list = []
