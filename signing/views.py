"""The counterparty's approval page, `/approve/<token>`: server-rendered, no login, outside `/api/`.

GET shows the contract (summary, terms, line items, SLA targets, money) with the SHA-256 of exactly
those terms, and a form (name, e-mail, typed signature, accept or reject with a reason). POST
records the decision. The form is CSRF-protected (Django's middleware; `csrf_failure` is the clear
page for a refused form) and the page is rate-limited per client address. Every refusal (unknown,
used, expired, void, terms changed, too many requests) is a page that says what happened, never a 500.
"""

from __future__ import annotations

import ipaddress
import time

from django import forms
from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import FieldDoesNotExist
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from config.api.throttling import client_address
from contracts.models import Contract

from . import services
from .documents import document_hash, terms_document

METRICS = {"response": "Response", "on_site": "On site", "resolution": "Resolution"}


class DecisionForm(forms.Form):
    name = forms.CharField(max_length=160, label="Your name")
    email = forms.EmailField(max_length=254, label="Your e-mail address")
    signature = forms.CharField(max_length=160, label="Type your full name as your signature")
    decision = forms.ChoiceField(choices=[("accept", "I accept these terms"), ("reject", "I reject these terms")],
                                 widget=forms.RadioSelect)  # fmt: skip
    reason = forms.CharField(max_length=2000, required=False, widget=forms.Textarea(attrs={"rows": 3}),
                             label="Reason (required to reject)")  # fmt: skip
    terms_hash = forms.CharField(max_length=64, widget=forms.HiddenInput)

    def clean(self):
        data = super().clean()
        if data.get("decision") == "reject" and not (data.get("reason") or "").strip():
            self.add_error("reason", "Please say why you reject the terms.")
        name, signature = (data.get("name") or "").strip(), (data.get("signature") or "").strip()
        if name and signature and signature.casefold() != name.casefold():
            self.add_error("signature", "Type your name exactly as above to sign.")
        return data


def _ip_address(request) -> str | None:
    """The signer's address for the record, when it is one (a proxy may forward anything)."""
    address = client_address(request)
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        return None


def rate_limited(request) -> int | None:
    """Seconds to wait when this address has made too many requests in the current minute."""
    limit = settings.SIGNING_RATE_LIMIT_POST if request.method == "POST" else settings.SIGNING_RATE_LIMIT_GET
    window = int(time.time() // 60)
    key = f"signing:rate:{request.method}:{client_address(request)}:{window}"
    if cache.add(key, 1, timeout=90):
        count = 1
    else:
        try:
            count = cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.add(key, 1, timeout=90)
            count = 1
    if count > limit:
        return 60 - int(time.time()) % 60
    return None


def term_rows(document: dict) -> list[tuple[str, object]]:
    """The terms as the page lists them: readable names and values, references by name (the hash covers ids)."""
    names = {"counterparty": document["contract"]["counterparty"]}
    if "billing_calendar" in document:
        names["billing_calendar"] = document["billing_calendar"]["name"]
    return sorted(
        (key.replace("_", " ").capitalize(), names[key] if key in names else readable_term(key, value))
        for key, value in document["terms"].items()
    )


def readable_term(key: str, value: object) -> object:
    """A term's value for a reader who is not a developer: Yes/No, a choice's label, a list joined."""
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if isinstance(value, list):
        return ", ".join(str(item) for item in value) or "None"
    try:
        choices = dict(Contract._meta.get_field(key).flatchoices)
    except FieldDoesNotExist:
        return value
    return choices.get(value, value)


def _refusal(request, title: str, detail: str, status: int):
    response = render(request, "signing/refusal.html", {"title": title, "detail": detail}, status=status)
    return response


def _page(request, signature_request, form, status=200):
    contract = signature_request.contract
    document = terms_document(contract)
    if not form.is_bound:
        form = DecisionForm(initial={"name": signature_request.name, "email": signature_request.email,
                                     "terms_hash": document_hash(document)})  # fmt: skip
    context = {
        "document": document,
        "terms_hash": document_hash(document),
        "contract": contract,
        "request": signature_request,
        "form": form,
        "term_rows": term_rows(document),
        "metrics": METRICS,
    }
    return render(request, "signing/page.html", context, status=status)


@never_cache
@require_http_methods(["GET", "POST"])
def approval_page(request, token: str):
    wait = rate_limited(request)
    if wait is not None:
        response = _refusal(request, "Too many requests", f"Please wait {wait} seconds and try again.", 429)
        response["Retry-After"] = str(wait)
        return response
    try:
        signature_request = services.open_request(token)
    except services.Refusal as refusal:
        return _refusal(request, refusal.title, refusal.detail, refusal.status)
    if request.method == "GET":
        return _page(request, signature_request, DecisionForm())
    form = DecisionForm(request.POST)
    if not form.is_valid():
        return _page(request, signature_request, form, status=422)
    data = form.cleaned_data
    try:
        decided = services.decide(
            token=token,
            accept=data["decision"] == "accept",
            signer_name=data["name"],
            signer_email=data["email"],
            signature=data["signature"],
            reason=data["reason"],
            shown_terms_hash=data["terms_hash"],
            ip_address=_ip_address(request),
            user_agent=request.META.get("HTTP_USER_AGENT", ""),
        )
    except services.Refusal as refusal:
        return _refusal(request, refusal.title, refusal.detail, refusal.status)
    return render(request, "signing/done.html", {"request": decided, "contract": decided.contract})


def csrf_failure(request, reason: str = ""):
    """Django's CSRF refusal, as a clear page (CSRF_FAILURE_VIEW)."""
    return _refusal(
        request,
        "Form expired",
        "The form could not be verified (it may have been open too long, or cookies are blocked). "
        "Reload the page and submit it again.",
        403,
    )
