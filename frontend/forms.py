"""The login page's form: Django's, refusing an address locked out by ``nerloop.logins``."""

from __future__ import annotations

import math

from django import forms
from django.contrib.auth.forms import AuthenticationForm
from django.utils.translation import ngettext

from nerloop import logins


class LoginForm(AuthenticationForm):
    locked_message = ""

    def clean(self):
        wait = logins.seconds_locked(self.request, self.cleaned_data.get("username"))
        if wait:
            minutes = math.ceil(wait / 60)
            self.locked_message = ngettext(
                "Too many failed logins from this address. Try again in %(minutes)d minute.",
                "Too many failed logins from this address. Try again in %(minutes)d minutes.",
                minutes,
            ) % {"minutes": minutes}
            raise forms.ValidationError(self.locked_message, code="locked")
        return super().clean()
