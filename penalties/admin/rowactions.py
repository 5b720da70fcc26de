"""Admin actions that change the selected rows one service call at a time.

The violations' decisions, the measures' lift and withdraw and the remedies' decisions all
go the same way: take at most ACTION_LIMIT rows, ask for the note on a confirmation page
(Django's "are you sure?" pattern, sent again with post=yes), then call the service once
per row, each in its own transaction, reporting every refusal by row and counting the rest.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.admin import helpers
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.utils.translation import gettext_lazy as _

from creditledger.exceptions import ApplicationError
from creditledger.ledger.actors import Actor

ACTION_LIMIT = 500


class RowActionsMixin:
    """For a ModelAdmin. `action_select_related` is what row_label and the confirmation
    page read of each row; `too_many` says, with %(limit)d, that the selection was too big."""

    action_select_related: tuple[str, ...] = ()
    too_many = _("Select at most %(limit)d items at a time; nothing was changed.")

    def selected_rows(self, request: HttpRequest, queryset) -> list | None:
        rows = list(queryset.select_related(*self.action_select_related).order_by("pk")[: ACTION_LIMIT + 1])
        if len(rows) > ACTION_LIMIT:
            self.message_user(request, self.too_many % {"limit": ACTION_LIMIT}, messages.ERROR)
            return None
        return rows

    def row_label(self, row: Any) -> str:
        """How a refusal names the row."""
        return str(row)

    def run_each(self, request: HttpRequest, rows: list, call: Callable[[Actor, Any], Any], done) -> None:
        """call(actor, row) for each row, each one transaction; `done` (with %(count)d)
        counts the rows changed."""
        actor = Actor.for_user(request.user)
        count = 0
        for row in rows:
            try:
                call(actor, row)
            except ApplicationError as exc:
                # Four eyes, permission, jurisdiction or a state that moved on: say which and go on.
                self.message_user(
                    request,
                    _("%(row)s: %(error)s") % {"row": self.row_label(row), "error": exc.message},
                    messages.ERROR,
                )
            else:
                count += 1
        if count:
            self.message_user(request, done % {"count": count}, messages.SUCCESS)

    @staticmethod
    def note_form(
        request: HttpRequest, form_class: type[forms.Form], initial: dict | None = None
    ) -> forms.Form:
        """The confirmation page's form: bound when it was sent (post=yes), else fresh."""
        if request.POST.get("post") == "yes":
            return form_class(request.POST)
        return form_class(initial=initial)

    def confirmation_page(
        self,
        request: HttpRequest,
        template: str,
        *,
        rows: list,
        form: forms.Form,
        action: str,
        title,
        **extra,
    ) -> TemplateResponse:
        """Render `template` (one extending admin/penalties/note_confirmation.html)."""
        context = {
            **self.admin_site.each_context(request),
            "title": title,
            "opts": self.opts,
            "rows": rows,
            "form": form,
            "action": action,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "media": self.media,
            **extra,
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, template, context)
