"""The jobs console: run history with progress and outcome, retry/cancel actions, a submit form, schedules."""
from __future__ import annotations

import functools
import json

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from rest_framework import serializers
from rest_framework.exceptions import ValidationError as DRFValidationError

from apps.core.errors import ApplicationError
from apps.core.job_types import registry
from apps.jobs import selectors, services
from apps.jobs.models import JobAttempt, JobCluster, JobRun, JobSchedule
from apps.tenancy.admin_base import ReadOnlyAdminMixin, TenantScopedAdmin
from apps.tenancy.models import Tenant
from apps.tenancy.roles import Role

Status = JobRun.Status
STATUS_COLOURS = {
    Status.QUEUED: "#777", Status.RUNNING: "#1f6feb", Status.RETRYING: "#b08800", Status.SUCCEEDED: "#1a7f37",
    Status.FAILED: "#cf222e", Status.CANCELLED: "#555",
}


def _pretty_json(value) -> str:
    return format_html("<pre style='white-space:pre-wrap'>{}</pre>", json.dumps(value, indent=2, default=str))


class JobAttemptInline(admin.TabularInline):
    """Every ended attempt of the run: who ran it, when, and how it ended."""

    model = JobAttempt
    fields = ["number", "worker", "started_at", "ended_at", "outcome", "ended_how", "error", "traceback"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    verbose_name_plural = "attempts"

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_view_permission(self, request, obj=None) -> bool:
        return True  # whoever may see the run (JobRunAdmin decides, by tenant and role) sees its attempts


@admin.register(JobRun)
class JobRunAdmin(ReadOnlyAdminMixin, TenantScopedAdmin):
    """Runs are submitted through the submit form (job_submit) and their history deleted by the audited
    jobs.retention job: never added, changed or deleted here."""

    list_display = ["id", "type", "status_badge", "progress_bar", "attempts_display", "duration", "queued_at",
                    "submitted_by_display"]
    list_filter = ["status", "type", "queued_at"]
    # "worker" finds runs by worker host: its values are host:pid.
    search_fields = ["type", "idempotency_key", "task_id", "worker"]
    date_hierarchy = "queued_at"
    actions = ["retry_runs", "cancel_runs", "terminate_runs"]
    inlines = [JobAttemptInline]
    fields = ["type", "status", "progress_bar", "progress_message", "attempts_display", "params_pretty",
              "result_pretty", "error", "traceback", "submitted_by_display", "idempotency_key", "retry_of",
              "queued_at", "started_at", "finished_at", "next_attempt_at", "lease_expires_at", "cancel_requested",
              "terminate_requested_at", "task_id", "worker", "cluster"]
    readonly_fields = fields
    change_list_template = "admin/bulwark_jobs/jobrun/change_list.html"

    def has_operate_permission(self, request) -> bool:
        return self._role_allows(request, Role.OPERATOR)

    def _submitter_role(self, request) -> str | None:
        return Role.ADMIN if request.user.is_superuser else getattr(request, "role", None)

    @admin.display(description="status", ordering="status")
    def status_badge(self, run: JobRun) -> str:
        return format_html("<b style='color:{}'>{}</b>", STATUS_COLOURS.get(run.status, "#000"), run.status)

    @admin.display(description="progress", ordering="progress")
    def progress_bar(self, run: JobRun) -> str:
        return format_html(
            "<progress value='{}' max='100' title='{}'></progress> {}%", run.progress, run.progress_message,
            run.progress,
        )

    @admin.display(description="attempts")
    def attempts_display(self, run: JobRun) -> str:
        return f"{run.attempts} / {run.max_attempts}"

    @admin.display(description="duration")
    def duration(self, run: JobRun) -> str:
        seconds = run.duration_s
        return "-" if seconds is None else f"{seconds:.1f} s"

    @admin.display(description="params")
    def params_pretty(self, run: JobRun) -> str:
        return _pretty_json(run.params)

    @admin.display(description="result")
    def result_pretty(self, run: JobRun) -> str:
        if run.result is None:
            return "-"
        link = ""
        if isinstance(run.result, dict) and run.result.get("file"):
            url = reverse("v1:job-download", args=[run.pk])
            link = format_html("<p><a href='{}'>Download {}</a></p>", url, run.result["file"])
        return format_html("{}{}", link, _pretty_json(run.result))

    @admin.action(description="Retry selected failed or cancelled runs", permissions=["operate"])
    def retry_runs(self, request, queryset) -> None:
        self._apply(request, queryset, functools.partial(services.run_retry, role=self._submitter_role(request)),
                    "retried")

    @admin.action(description="Cancel selected runs", permissions=["operate"])
    def cancel_runs(self, request, queryset) -> None:
        self._apply(request, queryset, services.run_cancel, "cancelled (or asked to stop)")

    @admin.action(description="Terminate selected running runs (hard stop after the grace period)",
                  permissions=["operate"])
    def terminate_runs(self, request, queryset) -> None:
        self._apply(request, queryset, services.run_terminate, "asked to stop (terminated after the grace period)")

    def _apply(self, request, queryset, service, verb: str) -> None:
        done, refused = 0, []
        for run in queryset:
            try:
                service(run=run, actor=request.actor)
                done += 1
            except ApplicationError as exc:
                refused.append(exc.message)
            except DRFValidationError as exc:  # e.g. a retry of a type this deployment no longer has
                refused.append(f"{run}: {exc.detail}")
        if done:
            self.message_user(request, f"{done} run(s) {verb}.", messages.SUCCESS)
        for message in refused:
            self.message_user(request, message, messages.WARNING)

    def get_urls(self):
        return [
            path("submit/", self.admin_site.admin_view(self.submit_view), name="bulwark_jobs_jobrun_submit"),
            path("workers/", self.admin_site.admin_view(self.workers_view), name="bulwark_jobs_jobrun_workers"),
            *super().get_urls(),
        ]

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), "can_submit": self.has_operate_permission(request),
                         "can_see_workers": request.user.is_superuser}
        return super().changelist_view(request, extra_context=extra_context)

    def workers_view(self, request):
        """Live (refreshed every 5 s): queue depth and clusters per broker, and the clusters' heartbeats."""
        if not request.user.is_superuser:
            raise PermissionDenied  # workers and queues are the platform's, not one tenant's
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "Workers and queues",
            "brokers": selectors.broker_overview(),
            "clusters": JobCluster.objects.all(),
        }
        return TemplateResponse(request, "admin/bulwark_jobs/jobrun/workers.html", context)

    def submit_view(self, request):
        """Pick a type, then fill in a form built from that type's parameter serializer."""
        if not self.has_operate_permission(request):
            raise PermissionDenied
        type_name = request.POST.get("job_type") or request.GET.get("type") or ""
        job = registry.get(type_name)
        form = SubmitForm(request.POST or None, job=job, request=request)
        if request.method == "POST" and job is not None and form.is_valid():
            try:
                run = services.job_submit(job_type=job.name, params=form.params(), tenant=form.tenant(),
                                          submitted_by=request.actor, role=self._submitter_role(request))
            except (DRFValidationError, ValidationError) as exc:
                form.add_service_errors(exc)
            except ApplicationError as exc:
                form.add_error(None, exc.message)
            else:
                self.message_user(request, f"Submitted {run}.", messages.SUCCESS)
                return HttpResponseRedirect(reverse("admin:bulwark_jobs_jobrun_change", args=[run.pk]))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "Submit a job",
            "form": form,
            "job": job,
            "types": sorted(registry),
        }
        return TemplateResponse(request, "admin/bulwark_jobs/jobrun/submit.html", context)


def _form_field(field: serializers.Field) -> forms.Field:
    """A Django form field for one serializer field; the serializer still validates the whole submission."""
    common = {"required": field.required, "help_text": field.help_text or "", "label": field.label}
    if isinstance(field, serializers.BooleanField):
        return forms.BooleanField(**{**common, "required": False})
    if isinstance(field, serializers.ChoiceField):
        return forms.ChoiceField(choices=[("", "---"), *field.choices.items()], **common)
    if isinstance(field, serializers.IntegerField):
        return forms.IntegerField(**common)
    if isinstance(field, serializers.FloatField | serializers.DecimalField):
        return forms.FloatField(**common)
    if isinstance(field, serializers.DateTimeField):
        return forms.DateTimeField(**common)
    if isinstance(field, serializers.DateField):
        return forms.DateField(**common)
    if isinstance(field, serializers.CharField):
        return forms.CharField(**common)
    return forms.JSONField(**common)


class SubmitForm(forms.Form):
    job_type = forms.CharField(widget=forms.HiddenInput)

    def __init__(self, *args, job=None, request=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.job = job
        self.request = request
        self.param_names: list[str] = []
        if job is not None:
            self.fields["job_type"].initial = job.name
            for name, field in (job.params().fields.items() if job.params else []):
                if field.read_only:
                    continue
                self.fields[f"param_{name}"] = _form_field(field)
                self.param_names.append(name)
        if request is not None and request.user.is_superuser:
            self.fields["tenant"] = forms.ModelChoiceField(queryset=Tenant.objects.filter(is_active=True),
                                                           initial=getattr(request, "tenant", None))

    def params(self) -> dict:
        params = {}
        for name in self.param_names:
            value = self.cleaned_data.get(f"param_{name}")
            if value not in (None, ""):
                params[name] = value.isoformat() if hasattr(value, "isoformat") else value
        return params

    def tenant(self):
        return self.cleaned_data.get("tenant") or self.request.tenant

    def add_service_errors(self, exc) -> None:
        detail = getattr(exc, "detail", None) or getattr(exc, "message_dict", None) or {"__all__": exc.messages}
        for name, messages_ in detail.items():
            field = f"param_{name}" if name in self.param_names else None
            for message in messages_ if isinstance(messages_, list) else [messages_]:
                self.add_error(field, str(message))


class JobScheduleForm(forms.ModelForm):
    type = forms.ChoiceField(choices=())

    class Meta:
        model = JobSchedule
        fields = ["name", "tenant", "type", "params", "cron", "interval_min", "enabled"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["type"].choices = [(name, name) for name in sorted(registry)]

    def clean(self) -> dict:
        cleaned = super().clean()
        job = registry.get(cleaned.get("type") or "")
        if job is not None and "params" in cleaned:
            try:
                cleaned["params"] = job.validate(cleaned["params"] or {})
            except DRFValidationError as exc:
                detail = exc.detail if isinstance(exc.detail, dict) else {"params": exc.detail}
                self.add_error("params", "; ".join(f"{name}: {' '.join(map(str, errors))}"
                                                   for name, errors in detail.items()))
        return cleaned


@admin.register(JobSchedule)
class JobScheduleAdmin(TenantScopedAdmin):
    """Tenant admins edit their tenant's schedules; platform schedules (no tenant) are for superusers."""

    form = JobScheduleForm
    list_display = ["name", "type", "tenant_or_platform", "cadence", "enabled", "declared", "last_synced_at"]
    list_filter = ["enabled", "type", "declared"]
    search_fields = ["name", "type"]

    @admin.display(description="owner")
    def tenant_or_platform(self, schedule: JobSchedule) -> str:
        return str(schedule.tenant) if schedule.tenant_id else "platform (every tenant)"

    @admin.display(description="cadence")
    def cadence(self, schedule: JobSchedule) -> str:
        return schedule.cron or f"every {schedule.interval_min} min"

    def save_model(self, request, obj, form, change) -> None:
        if not request.user.is_superuser:
            obj.tenant = request.tenant
        services.schedule_save(schedule=obj)

    def delete_model(self, request, obj) -> None:
        services.schedule_delete(schedule=obj)

    def delete_queryset(self, request, queryset) -> None:
        for schedule in queryset:
            services.schedule_delete(schedule=schedule)
