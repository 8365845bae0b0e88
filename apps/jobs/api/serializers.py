"""Input and output shapes of the jobs API."""
from __future__ import annotations

from rest_framework import serializers

from apps.core.api.serializers import StrictSerializer
from apps.jobs.conf import jobs_settings
from apps.jobs.models import JobAttempt, JobRun


class JobSubmitSerializer(StrictSerializer):
    type = serializers.CharField(max_length=100)
    params = serializers.DictField(required=False, default=dict)
    idempotency_key = serializers.CharField(max_length=200, required=False, allow_null=True, default=None)


class JobSubmitBatchSerializer(StrictSerializer):
    runs = serializers.ListField(child=JobSubmitSerializer(), allow_empty=False,
                                 help_text="Runs to queue together: all or none (one INSERT, one commit, one push).")

    def validate_runs(self, runs: list) -> list:
        if len(runs) > jobs_settings.SUBMIT_MANY_MAX:
            raise serializers.ValidationError(f"At most {jobs_settings.SUBMIT_MANY_MAX} runs per batch.")
        return runs


class JobAttemptSerializer(serializers.ModelSerializer):
    class Meta:
        model = JobAttempt
        fields = ["number", "worker", "started_at", "ended_at", "outcome", "ended_how", "error", "traceback"]
        read_only_fields = fields


class JobRunFilterSerializer(serializers.Serializer):
    type = serializers.CharField(required=False)
    status = serializers.ChoiceField(choices=JobRun.Status.choices, required=False)
    queued_after = serializers.DateTimeField(required=False)
    queued_before = serializers.DateTimeField(required=False)
    worker_host = serializers.CharField(required=False, max_length=200,
                                        help_text="Runs whose last attempt ran on this host.")


class JobRunSerializer(serializers.ModelSerializer):
    submitted_by = serializers.SerializerMethodField()
    duration_s = serializers.FloatField(read_only=True, allow_null=True)
    attempt_history = JobAttemptSerializer(many=True, read_only=True)

    class Meta:
        model = JobRun
        fields = [
            "id", "type", "params", "status", "progress", "progress_message", "attempts", "max_attempts",
            "result", "error", "traceback", "submitted_by", "idempotency_key", "retry_of", "queued_at",
            "started_at", "finished_at", "next_attempt_at", "duration_s", "cancel_requested", "task_id", "worker",
            "terminate_requested_at", "attempt_history",
        ]
        read_only_fields = fields

    def get_submitted_by(self, run: JobRun) -> dict[str, str]:
        return {"kind": run.submitted_by_kind, "id": run.submitted_by_id, "display": run.submitted_by_display}


class JobTypeSerializer(serializers.Serializer):
    name = serializers.CharField()
    description = serializers.CharField()
    timeout_s = serializers.IntegerField()
    max_attempts = serializers.IntegerField()
    queue = serializers.CharField()
    submit_role = serializers.CharField(help_text="The least role that may submit or retry this type.")
    schedule = serializers.CharField()
    params_schema = serializers.DictField()


class JobTypeStatsSerializer(serializers.Serializer):
    queued = serializers.IntegerField()
    running = serializers.IntegerField()
    succeeded_1h = serializers.IntegerField()
    failed_1h = serializers.IntegerField()
    p50_run_s = serializers.FloatField(allow_null=True)
    p95_run_s = serializers.FloatField(allow_null=True)
    oldest_queued_age_s = serializers.FloatField(allow_null=True)


class WorkersSerializer(serializers.Serializer):
    clusters = serializers.IntegerField()
    workers = serializers.IntegerField()


class JobStatsSerializer(serializers.Serializer):
    window_s = serializers.IntegerField()
    types = serializers.DictField(child=JobTypeStatsSerializer())
    workers = WorkersSerializer()
