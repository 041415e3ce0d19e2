"""API tokens die with the password they were issued under.

A token is as good as the password: after a password change (by the user, or by an admin in
/admin/ after a leak) the old token must stop working, as the old sessions do.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model


def revoke_tokens_on_password_change(sender, instance, **kwargs) -> None:
    from rest_framework.authtoken.models import Token

    if instance.pk is None:
        return
    before = sender.objects.filter(pk=instance.pk).values_list("password", flat=True).first()
    if before is not None and before != instance.password:
        Token.objects.filter(user_id=instance.pk).delete()


def connect() -> None:
    from django.db.models.signals import pre_save

    pre_save.connect(
        revoke_tokens_on_password_change,
        sender=get_user_model(),
        dispatch_uid="annotation.revoke_tokens_on_password_change",
    )
