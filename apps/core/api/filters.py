"""Filter backends shared by every endpoint."""
from __future__ import annotations

from rest_framework import filters, serializers

MAX_SEARCH_TERMS = 10


class BoundedSearchFilter(filters.SearchFilter):
    """DRF's search, refusing more than MAX_SEARCH_TERMS terms with a 400.

    Each term adds an OR over every search field, so a query string of thousands of words costs
    seconds of database time per request, an amplifier for anyone with a viewer token.
    """

    def get_search_terms(self, request) -> list[str]:
        terms = super().get_search_terms(request)
        if len(terms) > MAX_SEARCH_TERMS:
            raise serializers.ValidationError({self.search_param: [f"At most {MAX_SEARCH_TERMS} search terms."]})
        return terms
