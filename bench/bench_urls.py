"""The product's URLs plus two baseline endpoints, so each API figure has a floor measured in the same run.

``/bench/hello``: a DRF view answering a constant (the framework's per-request cost: middleware, DRF's
request/response, authentication of an anonymous caller). ``/bench/orm``: a plain Django view with
one ORM query (the challenge list's first 50 ids and titles), answered as JSON.
"""

from django.http import JsonResponse
from django.urls import path
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from assay.server.challenges.models import Challenge
from assay.server.urls import urlpatterns as product_urls


class Hello(APIView):
    permission_classes = [AllowAny]
    throttle_classes: list = []

    def get(self, request):
        return Response({"hello": "world"})


def one_query(request):
    return JsonResponse({"results": list(Challenge.objects.order_by("id").values("id", "title")[:50])})


urlpatterns = [path("bench/hello", Hello.as_view()), path("bench/orm", one_query), *product_urls]
