"""Receivers for the auth events; each hands over to a service (connected in ConfigConfig.ready)."""

from typing import Any

from django.conf import settings
from django.contrib.auth.signals import user_logged_in, user_logged_out
from django.db.models.signals import pre_save
from django.dispatch import receiver
from django.http import HttpRequest

from openspc.revocation import session_signed_out, user_credentials_watch
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
