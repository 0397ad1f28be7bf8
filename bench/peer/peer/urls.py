from django.urls import path
from rest_framework.decorators import api_view, permission_classes
from rest_framework.response import Response
from rest_framework_api_key.models import APIKey
from rest_framework_api_key.permissions import BaseHasAPIKey


class KeyOfRequest(BaseHasAPIKey):
    """HasAPIKey, keeping the key it found: the answer names it, as /api/v1/me does."""

    model = APIKey

    def has_permission(self, request, view):
        key = self.get_key(request)
        if not key:
            return False
        try:
            request.api_key = self.model.objects.get_from_key(key)
        except self.model.DoesNotExist:
            return False
        return not request.api_key.has_expired and not request.api_key.revoked


@api_view(["GET"])
@permission_classes([KeyOfRequest])
def me(request):
    key = request.api_key
    return Response({"token": {"prefix": key.prefix, "name": key.name, "expires_at": key.expiry_date}})


urlpatterns = [path("api/v1/me", me)]
