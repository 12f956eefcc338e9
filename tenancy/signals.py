"""Keep the cached membership behind access tokens (tenancy/auth.py) in step with the database.

A membership's role or removal, its user's `is_active` (or deletion), and its organization
(slug, settings) are all read from the cached copy, so any save or delete of one of them drops
the cached copies it touches. Bulk `QuerySet.update()` sends no signal: code that changes these
models does it through `save()` (the API, the admin, the services).
"""

from django.contrib.auth import get_user_model
from django.db.models.signals import post_delete, post_save, pre_save
from django.dispatch import receiver

from .auth import forget_memberships
from .models import Membership, Organization


@receiver(post_save, sender=Membership, dispatch_uid="tenancy-membership-saved")
@receiver(post_delete, sender=Membership, dispatch_uid="tenancy-membership-deleted")
def membership_changed(sender, instance: Membership, **kwargs) -> None:
    slug = Organization.objects.filter(pk=instance.organization_id).values_list("slug", flat=True).first()
    if slug is not None:
        forget_memberships([(instance.user_id, slug)])


@receiver(pre_save, sender=Organization, dispatch_uid="tenancy-organization-saving")
def organization_saving(sender, instance: Organization, **kwargs) -> None:
    # The old slug: tokens name the organization by slug, so both old and new keys must go.
    if instance.pk is not None:
        instance._previous_slug = Organization.objects.filter(pk=instance.pk).values_list("slug", flat=True).first()


@receiver(post_save, sender=Organization, dispatch_uid="tenancy-organization-saved")
@receiver(post_delete, sender=Organization, dispatch_uid="tenancy-organization-deleted")
def organization_changed(sender, instance: Organization, **kwargs) -> None:
    slugs = {instance.slug, getattr(instance, "_previous_slug", None)} - {None}
    user_ids = Membership.objects.filter(organization_id=instance.pk).values_list("user_id", flat=True)
    forget_memberships((user_id, slug) for user_id in user_ids for slug in slugs)


def user_changed(sender, instance, **kwargs) -> None:
    memberships = list(Membership.objects.filter(user_id=instance.pk).values_list("organization__slug", "username"))
    forget_memberships((instance.pk, slug) for slug, _ in memberships)
    if any(username != instance.username for _, username in memberships):
        # A renamed user: the copy its memberships sort the member list by (issue 15).
        Membership.objects.filter(user_id=instance.pk).update(username=instance.username)


post_save.connect(user_changed, sender=get_user_model(), dispatch_uid="tenancy-user-saved")
# A deleted user's memberships go with it (each sends its own post_delete above).
