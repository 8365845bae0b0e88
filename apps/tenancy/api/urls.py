from django.urls import path
from rest_framework.routers import SimpleRouter

from apps.tenancy.api import views

router = SimpleRouter(trailing_slash=True)
router.register("tenants", views.TenantViewSet, basename="tenant")
# Before "members": its detail route would take "invitations" for an id.
router.register("members/invitations", views.InvitationViewSet, basename="invitation")
router.register("members", views.MembershipViewSet, basename="member")
router.register("tokens", views.ApiTokenViewSet, basename="token")

urlpatterns = [
    path("me/", views.MeView.as_view(), name="me"),
    path("me/switch/", views.SwitchTenantView.as_view(), name="me-switch"),
    path("members/invitations/accept/", views.AcceptInvitationView.as_view(), name="invitation-accept"),
    *router.urls,
]
