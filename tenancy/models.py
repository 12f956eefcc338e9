"""Tenants (4me's account), memberships and roles (DESIGN §4)."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import models

from config import dates

from .currencies import is_currency


class Role(models.TextChoices):
    VIEWER = "viewer"
    OPERATOR = "operator"
    MANAGER = "manager"
    ADMIN = "admin"


ROLE_RANK = {Role.VIEWER: 0, Role.OPERATOR: 1, Role.MANAGER: 2, Role.ADMIN: 3}


def role_at_least(role: str, required: str) -> bool:
    return ROLE_RANK[Role(role)] >= ROLE_RANK[Role(required)]


def validate_currency(value: str) -> None:
    if not is_currency(value):
        raise ValidationError(f"{value!r} is not an ISO 4217 currency code.")


def validate_email_list(value) -> None:
    """A list of e-mail addresses (the organization's `notification_emails`)."""
    if not isinstance(value, list):
        raise ValidationError("Expected a list of e-mail addresses.")
    if len(value) > 20:
        raise ValidationError("At most 20 addresses.")
    for address in value:
        if not isinstance(address, str):
            raise ValidationError(f"{address!r} is not an e-mail address.")
        try:
            validate_email(address)
        except ValidationError:
            raise ValidationError(f"{address!r} is not an e-mail address.") from None


def validate_time_zone(value: str) -> None:
    if not dates.is_time_zone(value):
        raise ValidationError(f"{value!r} is not an IANA time zone.")


class TenantQuerySet(models.QuerySet):
    """The one scoping method every read and write of tenant-owned data goes through."""

    def for_organization(self, organization: Organization) -> TenantQuerySet:
        return self.filter(organization=organization)


class TenantModel(models.Model):
    """Base for every tenant-owned model: a required organization and the scoped queryset."""

    organization = models.ForeignKey("tenancy.Organization", on_delete=models.PROTECT, related_name="+")

    objects = TenantQuerySet.as_manager()

    class Meta:
        abstract = True

    def clean_fields(self, exclude=None):
        """What every model form checks (the admin's): each reference it sets names an object of
        the same organization (DESIGN §4), as the API's reference fields do. The admin lets staff
        pick any row, and a rule of one organization on another's contract could then be amended
        by that other organization (found by an outside sweep). Only the form's own fields (not
        `exclude`): an error must name a field the form shows."""
        super().clean_fields(exclude=exclude)
        if self.organization_id is None:
            return
        errors = {}
        for field in self._meta.concrete_fields:
            target = field.related_model
            if not isinstance(field, models.ForeignKey) or not issubclass(target, TenantModel):
                continue
            if exclude and field.name in exclude:
                continue
            pk = getattr(self, field.attname)
            if pk is None:
                continue
            owner = target._base_manager.filter(pk=pk).values_list("organization_id", flat=True).first()
            if owner is not None and owner != self.organization_id:
                name = target._meta.verbose_name
                errors[field.name] = [f"{name.capitalize()} {pk} is not one of this organization's."]
        if errors:
            raise ValidationError(errors)


class SourcedModel(TenantModel):
    """A record integrators sync: `source` (max 30) + `sourceID` (max 128), unique per
    organization and source (each concrete model declares the unique constraint)."""

    source = models.CharField(max_length=30, blank=True, default="")
    source_id = models.CharField(max_length=128, blank=True, default="")

    class Meta:
        abstract = True


class Organization(models.Model):
    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=160)
    default_currency = models.CharField(max_length=3, default="EUR", validators=[validate_currency])
    default_time_zone = models.CharField(max_length=64, default="UTC", validators=[validate_time_zone])
    # Who is e-mailed about breach detections and contract expiry reminders (issue 9).
    notification_emails = models.JSONField(
        default=list,
        blank=True,
        validators=[validate_email_list],
        help_text='E-mail addresses told about breaches and expiring contracts, e.g. ["ops@example.com"].',
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class MembershipQuerySet(TenantQuerySet):
    def update(self, **kwargs):
        """A bulk update sends no signal: it drops the cached memberships it changes itself
        (the token's membership cache, issue 15), so a demotion counts at once this way too."""
        from .auth import forget_memberships

        pairs = list(self.values_list("user_id", "organization__slug"))
        rows = super().update(**kwargs)
        forget_memberships(pairs)
        return rows


class Membership(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.VIEWER)
    # The user's username, copied here (issue 15) so that the member list's default sort has an
    # index per organization: set on every save, and on every save of the user (tenancy.signals).
    username = models.CharField(max_length=150, editable=False, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = MembershipQuerySet.as_manager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "organization"], name="membership_unique_user_org")]
        ordering = ["organization__name", "user__username"]
        indexes = [
            # Issue 15: the member list's default sort, id last: a page's ids come straight off the index.
            models.Index(fields=["organization", "username", "id"], name="membership_org_username")
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.organization} ({self.role})"

    def save(self, *args, **kwargs):
        self.username = self.user.username
        if kwargs.get("update_fields"):
            kwargs["update_fields"] = {*kwargs["update_fields"], "username"}
        super().save(*args, **kwargs)


class ExternalIdentity(models.Model):
    """The local user provisioned for a subject of an external OAuth2 issuer."""

    issuer = models.CharField(max_length=255)
    subject = models.CharField(max_length=255)
    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="external_identity")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["issuer", "subject"], name="external_identity_unique")]
        verbose_name_plural = "external identities"

    def __str__(self) -> str:
        return f"{self.subject} @ {self.issuer}"
