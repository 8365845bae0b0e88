"""The scorecard histograms move from resilience's own 2 % log buckets to core's 1 % ones (apps/core/histogram.py,
shared with monitoring): each stored bucket is re-filed under the 1 % bucket of its representative value, so
stored minutes keep their quantiles (within the 2 % they had) and merge with new ones."""
import math

from django.db import migrations

OLD_GAMMA = 1.02 / 0.98
NEW_GAMMA = 1.01 / 0.99
MIN_MS, MAX_MS = 0.001, 86_400_000.0


def _new_bucket(old_bucket: int) -> int:
    value = min(max(2 * OLD_GAMMA**old_bucket / (OLD_GAMMA + 1), MIN_MS), MAX_MS)
    return math.ceil(math.log(value) / math.log(NEW_GAMMA))


def rebucket(apps, schema_editor):
    DependencyMinute = apps.get_model("bulwark_resilience", "DependencyMinute")
    for minute in DependencyMinute.objects.exclude(histogram={}).only("pk", "histogram").iterator():
        moved: dict[str, int] = {}
        for bucket, count in minute.histogram.items():
            key = str(_new_bucket(int(bucket)))
            moved[key] = moved.get(key, 0) + int(count)
        DependencyMinute.objects.filter(pk=minute.pk).update(histogram=moved)


class Migration(migrations.Migration):
    dependencies = [("bulwark_resilience", "0003_resilience4j_modes_decimal_thresholds_ignored")]

    operations = [migrations.RunPython(rebucket, migrations.RunPython.noop)]
