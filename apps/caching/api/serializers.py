"""Input and output shapes of the caching API."""
from __future__ import annotations

from rest_framework import serializers

from apps.caching.models import STAT_FIELDS, VARY_ON_HELP, CachePolicy, VaryOn
from apps.caching.services import POLICY_FIELDS
from apps.core.api.serializers import StrictModelSerializer, StrictSerializer


def _strings(max_length: int, **kwargs) -> serializers.ListField:
    return serializers.ListField(child=serializers.CharField(max_length=max_length), max_length=50,
                                 required=False, **kwargs)


class CachePolicyInputSerializer(StrictModelSerializer):
    methods = serializers.ListField(child=serializers.ChoiceField(choices=["GET", "HEAD"]), max_length=2,
                                    required=False)
    vary_on = serializers.ChoiceField(choices=VaryOn.choices, required=False, help_text=VARY_ON_HELP)
    vary_headers = _strings(64)
    ignored_query_params = _strings(100)
    tags = _strings(100)
    cacheable_statuses = serializers.ListField(child=serializers.IntegerField(min_value=200, max_value=599),
                                               max_length=50, required=False)
    invalidate_on_models = _strings(100)
    warm_urls = _strings(2000)

    class Meta:
        model = CachePolicy
        fields = list(POLICY_FIELDS)
        # Uniqueness of (tenant, name) is checked by the model's full_clean, where the tenant is known.
        validators: list = []


class CachePolicyOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = CachePolicy
        fields = ["id", *POLICY_FIELDS, "created_at", "updated_at"]


class CacheStatsQuerySerializer(serializers.Serializer):
    minutes = serializers.IntegerField(min_value=1, max_value=7 * 24 * 60, default=60)


class CacheStatRowSerializer(serializers.Serializer):
    minute = serializers.DateTimeField()
    hit_ratio = serializers.FloatField(allow_null=True)


for _name in STAT_FIELDS:
    CacheStatRowSerializer._declared_fields[_name] = serializers.IntegerField()


class CacheStatTotalsSerializer(serializers.Serializer):
    hit_ratio = serializers.FloatField(allow_null=True)


for _name in STAT_FIELDS:
    CacheStatTotalsSerializer._declared_fields[_name] = serializers.IntegerField()


class CacheStoreMemorySerializer(serializers.Serializer):
    backend = serializers.CharField()
    bytes = serializers.IntegerField(allow_null=True)
    keys = serializers.IntegerField(allow_null=True)
    complete = serializers.BooleanField()


class CachePolicyStatsSerializer(serializers.Serializer):
    policy = serializers.IntegerField()
    minutes = serializers.IntegerField()
    totals = CacheStatTotalsSerializer()
    per_minute = CacheStatRowSerializer(many=True)
    store_memory = CacheStoreMemorySerializer()


class TenantPolicyField(serializers.PrimaryKeyRelatedField):
    """A cache policy of the request's tenant, by its integer id (1.5 or true would be read as 1)."""

    def __init__(self, **kwargs) -> None:
        super().__init__(queryset=CachePolicy.objects.none(), **kwargs)

    def get_queryset(self):
        return CachePolicy.objects.for_tenant(getattr(self.context.get("request"), "tenant", None))

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int | str) or (isinstance(data, str) and not data.isdigit()):
            self.fail("incorrect_type", data_type=type(data).__name__)
        return super().to_internal_value(data)


class CacheInvalidateInputSerializer(StrictSerializer):
    tags = serializers.ListField(child=serializers.RegexField(r"^[A-Za-z0-9_.:/-]{1,100}$"), required=False,
                                 min_length=1, max_length=100)
    policy = TenantPolicyField(required=False)
    all = serializers.BooleanField(required=False, default=False)

    def validate(self, attrs: dict) -> dict:
        given = [name for name in ("tags", "policy") if attrs.get(name)] + (["all"] if attrs.get("all") else [])
        if len(given) != 1:
            raise serializers.ValidationError("Give exactly one of tags, policy or all.")
        return attrs


class CacheInvalidateOutputSerializer(serializers.Serializer):
    invalidated = serializers.DictField()


class CacheWarmInputSerializer(StrictSerializer):
    policy = TenantPolicyField()


class CacheWarmOutputSerializer(serializers.Serializer):
    job = serializers.IntegerField(help_text="Id of the JobRun: follow it at /api/v1/jobs/{id}/.")
    status = serializers.CharField()
