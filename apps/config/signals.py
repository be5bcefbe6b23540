"""Receivers for the auth events; each hands over to a service (connected in ConfigConfig.ready)."""

from typing import Any

from django.conf import settings
from django.contrib.auth.signals import user_logged_in, user_logged_out
from django.db.models.signals import m2m_changed, post_delete, post_save, pre_save
from django.dispatch import receiver
from django.http import HttpRequest

from openspc.kept import generation_changed
from openspc.revocation import session_signed_out, user_credentials_watch
from openspc.roles import ACCESS
from openspc.sessions import session_sign_in_record


@receiver(user_logged_in, dispatch_uid="openspc.session_sign_in")
def _session_sign_in(sender: Any, request: HttpRequest | None, **kwargs: Any) -> None:
    if request is not None and hasattr(request, "session"):
        session_sign_in_record(session=request.session)


@receiver(user_logged_out, dispatch_uid="openspc.session_signed_out")
def _session_signed_out(sender: Any, request: HttpRequest | None, **kwargs: Any) -> None:
    if request is not None and hasattr(request, "session"):
        session_signed_out(session_key=request.session.session_key)


@receiver(pre_save, sender=settings.AUTH_USER_MODEL, dispatch_uid="openspc.user_credentials")
def _user_credentials(sender: Any, instance: Any, update_fields: Any = None, **kwargs: Any) -> None:
    if kwargs.get("raw"):
        return  # loaddata: nobody's credentials changed
    user_credentials_watch(user=instance, update_fields=update_fields)


# What openspc.roles keeps of who holds which role: any write of these drops it in every process. By
# label, not by class, so that the historical models of a data migration count too.
ACCESS_ROWS = frozenset({"auth.group", "auth.permission"})
ACCESS_LINKS = frozenset({"auth.user_groups", "auth.user_user_permissions", "auth.group_permissions"})


@receiver(post_save, dispatch_uid="openspc.access_saved")
@receiver(post_delete, dispatch_uid="openspc.access_deleted")
def _access_row_written(sender: Any, **kwargs: Any) -> None:
    if sender._meta.label_lower in ACCESS_ROWS:
        generation_changed(ACCESS)


@receiver(m2m_changed, dispatch_uid="openspc.access_linked")
def _access_linked(sender: Any, action: str, **kwargs: Any) -> None:
    if action.startswith("post_") and sender._meta.label_lower in ACCESS_LINKS:
        generation_changed(ACCESS)
