"""`/api/v1/webhooks` (admins write, managers read), their deliveries, and the organization's
notification e-mails (`/api/v1/notification_settings`)."""

from __future__ import annotations

from django.http import Http404
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.views import APIView

from config.api.csv import JSONErrorsMixin
from config.api.filters import MAX_DB_ID, PredicateFilter, PredicateFilterSet
from config.api.serializers import ActionSerializer, ResourceSerializer, RowMethodField, StrictInputMixin
from config.api.viewsets import CreateMixin, DestroyMixin, NestedListMixin, ResourceViewSet, UpdateMixin

from . import services
from .delivery import deliver_now
from .models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from .outbox import invalid_patterns, pattern_error
from .services import MAX_REDELIVER_EVENTS


class WebhookEndpointSerializer(ResourceSerializer):
    event_types = serializers.ListField(
        child=serializers.CharField(max_length=64),
        min_length=1,
        max_length=50,
        help_text='Event types to receive; `*` matches any run of characters: ["breach.*", "contract.expiring"].',
    )

    class Meta:
        model = WebhookEndpoint
        fields = [
            "id", "url", "description", "event_types", "active", "created_at", "updated_at", "disabled_at",
            "disabled_reason",
        ]  # fmt: skip
        read_only_fields = ["id", "created_at", "updated_at", "disabled_at", "disabled_reason"]
        default_fields = ["id", "url", "description", "event_types", "active", "created_at"]
        extra_kwargs = {"active": {"required": False}}

    def validate_event_types(self, value: list[str]) -> list[str]:
        bad = invalid_patterns(value)
        if bad:
            raise serializers.ValidationError(pattern_error(bad))
        return list(dict.fromkeys(value))


class WebhookEndpointWithSecretSerializer(WebhookEndpointSerializer):
    """The endpoint with its signing secret: only in the answers to create and rotate_secret."""

    secret = serializers.CharField(read_only=True, help_text="`whsec_...`: shown only now; keep it.")

    class Meta(WebhookEndpointSerializer.Meta):
        fields = [*WebhookEndpointSerializer.Meta.fields, "secret"]
        read_only_fields = [*WebhookEndpointSerializer.Meta.read_only_fields, "secret"]


class WebhookEndpointFilterSet(PredicateFilterSet):
    class Meta:
        model = WebhookEndpoint
        fields = ["active", "created_at"]


class WebhookAttemptSerializer(serializers.ModelSerializer):
    class Meta:
        model = WebhookAttempt
        fields = ["number", "attempted_at", "http_status", "duration_ms", "error", "response_excerpt"]
        read_only_fields = fields


class WebhookDeliverySerializer(ResourceSerializer):
    webhook_id = RowMethodField("event", "endpoint", help_text="The `webhook-id` header, the same on every attempt.")
    event = RowMethodField("event", "event__type")
    duration_ms = serializers.IntegerField(source="last_duration_ms", read_only=True, allow_null=True)
    attempt_log = WebhookAttemptSerializer(many=True, read_only=True, help_text="Every attempt, oldest first.")

    class Meta:
        model = WebhookDelivery
        fields = [
            "id", "webhook_id", "event", "status", "attempts", "last_http_status", "duration_ms", "next_attempt_at",
            "response_excerpt", "last_error", "last_attempt_at", "delivered_at", "created_at", "attempt_log",
        ]  # fmt: skip
        read_only_fields = fields
        default_fields = [
            "id", "webhook_id", "event", "status", "attempts", "last_http_status", "duration_ms", "next_attempt_at",
            "response_excerpt", "created_at",
        ]  # fmt: skip
        csv_parts = {"event": ("id", "type")}  # CSV columns event_id, event_type (config.api.csv)

    @extend_schema_field(
        {
            "type": "object",
            "properties": {"id": {"type": "integer"}, "type": {"type": "string"}},
            "required": ["id", "type"],
        }
    )
    def get_event(self, row) -> dict:
        return {"id": row["event"], "type": row["event__type"]}

    def get_webhook_id(self, row) -> str:
        return WebhookDelivery.webhook_id_of(row["event"], row["endpoint"])


class WebhookDeliveryFilterSet(PredicateFilterSet):
    event_id = PredicateFilter(field_name="event")
    event_type = PredicateFilter(field_name="event__type")

    class Meta:
        model = WebhookDelivery
        fields = ["status", "last_http_status", "created_at", "next_attempt_at"]


class RedeliverEventsSerializer(ActionSerializer):
    since = serializers.IntegerField(
        required=False,
        min_value=0,
        max_value=MAX_DB_ID,
        help_text="Queue the endpoint's events after this event id (`0`: from the first).",
    )
    until = serializers.IntegerField(
        required=False,
        min_value=0,
        max_value=MAX_DB_ID,
        help_text="With `since`: only up to this event id, inclusive.",
    )
    event_ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=MAX_DB_ID),
        required=False,
        min_length=1,
        max_length=MAX_REDELIVER_EVENTS,
        help_text="Or these events (each of the endpoint's event types).",
    )

    def validate(self, data):
        if "until" in data and "since" not in data:
            raise serializers.ValidationError({"until": ["Only with since."]})
        if ("since" in data) == ("event_ids" in data):
            message = "Send either since (with until, optionally) or event_ids."
            raise serializers.ValidationError({"since": [message], "event_ids": [message]})
        if "until" in data and data["until"] <= data["since"]:
            raise serializers.ValidationError({"until": ["Must be greater than since."]})
        return data


class RedeliveryQueuedSerializer(serializers.Serializer):
    queued = serializers.IntegerField(help_text="How many deliveries were queued.")
    event_ids = serializers.ListField(
        child=serializers.IntegerField(),
        help_text="The events queued, oldest first (delivered or pending ones are not).",
    )


class WebhookEndpointViewSet(CreateMixin, UpdateMixin, DestroyMixin, ResourceViewSet):
    """Webhook endpoints: signed deliveries (Standard Webhooks) of the events they subscribe to.

    Admins write; managers read. The secret is shown once, in the answer to the create (and to
    `rotate_secret`). Only https URLs to public addresses are accepted.
    """

    queryset = WebhookEndpoint.objects.all()
    serializer_class = WebhookEndpointSerializer
    filterset_class = WebhookEndpointFilterSet
    sort_fields = {"url": "url", "created_at": "created_at", "active": "active"}
    default_sort = "id"
    read_role = "manager"
    write_role = "admin"
    sent_headers = {"ping": ("Location",)}  # the delivery the ping made, answered 200 with it

    @staticmethod
    def update_service(*, instance, actor, data):
        return services.update_endpoint(instance=instance, actor=actor, data=data)

    @staticmethod
    def delete_service(*, instance, actor):
        services.delete_endpoint(instance=instance, actor=actor)

    def with_secret(self, endpoint, status_code: int, headers=None) -> Response:
        data = WebhookEndpointWithSecretSerializer(endpoint, context=self.get_serializer_context()).data
        return Response(data, status=status_code, headers=headers)

    @extend_schema(responses={201: WebhookEndpointWithSecretSerializer})
    def create(self, request, *args, **kwargs):
        """Create an endpoint; the answer holds its `secret`, shown only this once."""
        form = self.get_serializer(data=request.data)
        form.is_valid(raise_exception=True)
        endpoint = services.create_endpoint(
            organization=self.organization, actor=request.user, data=form.validated_data
        )
        return self.with_secret(endpoint, status.HTTP_201_CREATED, {"Location": self.detail_url(endpoint)})

    @extend_schema(request=None, responses={200: WebhookEndpointWithSecretSerializer})
    @action(detail=True, methods=["post"], required_role="admin")
    def rotate_secret(self, request, pk=None):
        """A new secret (in the answer, shown only now); the old one keeps signing beside it for 24 h."""
        endpoint = self.get_object()  # a 404 before a 422 on the body
        ActionSerializer(data=request.data).is_valid(raise_exception=True)
        endpoint = services.rotate_secret(endpoint=endpoint, actor=request.user)
        return self.with_secret(endpoint, status.HTTP_200_OK)

    @extend_schema(request=None, responses={200: WebhookDeliverySerializer})
    @action(detail=True, methods=["post"], required_role="admin")
    def ping(self, request, pk=None):
        """Send a signed `webhook.ping` event to this endpoint now; the answer is the delivery with
        its outcome (a failed ping is retried on the schedule while the endpoint is active)."""
        endpoint = self.get_object()  # a 404 before a 422 on the body
        ActionSerializer(data=request.data).is_valid(raise_exception=True)
        delivery = services.ping_endpoint(endpoint=endpoint, actor=request.user)
        delivery = deliver_now(delivery)
        location = reverse(
            "webhook-delivery-detail", kwargs={"webhook_pk": delivery.endpoint_id, "pk": delivery.pk}, request=request
        )
        data = WebhookDeliverySerializer(delivery, context=self.get_serializer_context()).data
        return Response(data, headers={"Location": location})

    @extend_schema(request=RedeliverEventsSerializer, responses={200: RedeliveryQueuedSerializer})
    @action(detail=True, methods=["post"], required_role="admin")
    def redeliver(self, request, pk=None):
        """Queue this endpoint's events after `since` (up to `until`), or the events `event_ids`, due
        at once: what it missed while disabled, or what failed. Events of its event types only; one
        already delivered or pending is left as it is; at most 1,000 events a call (a 422 beyond)."""
        endpoint = self.get_object()  # a 404 before a 422 on the body
        form = RedeliverEventsSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        queued = services.redeliver_events(endpoint=endpoint, actor=request.user, **form.validated_data)
        return Response({"queued": len(queued), "event_ids": queued})


class WebhookDeliveryViewSet(NestedListMixin, ResourceViewSet):
    """An endpoint's deliveries, newest first: attempts, status, last HTTP status, duration, next
    attempt and the first kilobyte of the last response; a single delivery also lists every
    attempt (`attempt_log`). Admins may redeliver."""

    queryset = WebhookDelivery.objects.select_related("event")
    serializer_class = WebhookDeliverySerializer
    filterset_class = WebhookDeliveryFilterSet
    sort_fields = {"created_at": "created_at", "next_attempt_at": "next_attempt_at", "attempts": "attempts"}
    default_sort = "-id"
    read_role = "manager"
    write_role = "admin"
    parent_attribute = "endpoint"

    @property
    def endpoint(self) -> WebhookEndpoint:
        if not hasattr(self, "_endpoint"):
            found = WebhookEndpoint.objects.for_organization(self.organization).filter(pk=self.kwargs["webhook_pk"])
            self._endpoint = found.first()
            if self._endpoint is None:
                raise Http404
        return self._endpoint

    def get_queryset(self):
        if self.parent_unread():
            queryset = super().get_queryset().filter(endpoint_id=self.kwargs["webhook_pk"])
        else:
            queryset = super().get_queryset().filter(endpoint=self.endpoint)
        fields = self.selected_fields(self.serializer_class)
        if fields is None or "attempt_log" in fields:  # a single delivery, or asked for
            queryset = queryset.prefetch_related("attempt_log")
        return queryset

    @extend_schema(request=None, responses={200: WebhookDeliverySerializer})
    @action(detail=True, methods=["post"], required_role="admin")
    def redeliver(self, request, pk=None, webhook_pk=None):
        """Send this delivery again (same `webhook-id`), due at once; the retry schedule starts afresh."""
        delivery = self.get_object()  # a 404 before a 422 on the body
        ActionSerializer(data=request.data).is_valid(raise_exception=True)
        delivery = services.redeliver(delivery=delivery, actor=request.user)
        return self.respond(delivery)


class NotificationSettingsSerializer(StrictInputMixin, serializers.Serializer):
    notification_emails = serializers.ListField(
        child=serializers.EmailField(max_length=254),
        max_length=20,
        help_text="Who is e-mailed about breach detections and contract expiry reminders (each address once).",
    )

    def validate_notification_emails(self, value: list[str]) -> list[str]:
        # Each address once, in the order given (as a webhook's event types): a list sent with a
        # repeat read back doubled, though the outbox sent one mail (found by an outside tester).
        # Addresses that differ only in case are one mailbox in practice.
        firsts: dict[str, str] = {}
        for address in value:
            firsts.setdefault(address.casefold(), address)
        return list(firsts.values())


class NotificationSettingsView(JSONErrorsMixin, APIView):
    """The organization's notification e-mails (managers read, admins write).

    Breach detections and contract expiry reminders are e-mailed to these addresses; escalation
    levels e-mail the addresses in their own `notify`.
    """

    read_role = "manager"
    write_role = "admin"
    taken_query_params = ()

    def get_serializer(self, *args, **kwargs):
        return NotificationSettingsSerializer(*args, **kwargs)

    @extend_schema(responses={200: NotificationSettingsSerializer})
    def get(self, request):
        organization = request.auth.organization
        return Response({"notification_emails": organization.notification_emails})

    @extend_schema(request=NotificationSettingsSerializer, responses={200: NotificationSettingsSerializer})
    def patch(self, request):
        form = NotificationSettingsSerializer(data=request.data, partial=True)
        form.is_valid(raise_exception=True)
        organization = services.update_notification_settings(
            organization=request.auth.organization, actor=request.user, data=form.validated_data
        )
        return Response({"notification_emails": organization.notification_emails})
