"""Server-side request forgery: only https to hosts whose every address is global, checked when
the URL is saved and again at connect time, the connection pinned to the checked address.

No packet leaves loopback: names resolve through a stub (`notifications.targets.resolve`), and
`socket.create_connection` is watched to prove a refused delivery never connects anywhere.
"""

from __future__ import annotations

import datetime as dt
import socket
import ssl
import threading
import time
from http.server import ThreadingHTTPServer

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from contracts.services import create_counterparty
from notifications import services, targets
from notifications.models import WebhookDelivery
from notifications.targets import UnsafeTarget, check_url

from .conftest import PUBLIC_V4, PUBLIC_V6, Receiver, _handler, deliver

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://example.com/hook", "Only https"),
        ("ftp://example.com/hook", "Only https"),
        ("https:///hook", "no host"),
        ("https://user:secret@example.com/hook", "Credentials"),
        ("https://example.com:99999/", "Not a valid URL"),
        ("https://127.0.0.1/hook", "127.0.0.1 is not a public address"),
        ("https://10.1.2.3/hook", "not a public address"),
        ("https://172.16.0.1/hook", "not a public address"),
        ("https://192.168.1.1/hook", "not a public address"),
        ("https://169.254.169.254/latest/meta-data", "not a public address"),  # cloud metadata
        ("https://100.64.0.1/", "not a public address"),  # shared (carrier-grade NAT)
        ("https://0.0.0.0/", "not a public address"),
        ("https://224.0.0.1/", "not a public address"),
        ("https://[::1]/hook", "not a public address"),
        ("https://[fe80::1]/hook", "not a public address"),
        ("https://[fd00::1]/hook", "not a public address"),
        ("https://[::ffff:10.0.0.1]/hook", "not a public address"),  # IPv4-mapped
        # IPv6 forms leading to an IPv4 address (found by an outside sweep): NAT64, 6to4, compatible
        ("https://[64:ff9b::7f00:1]/hook", "127.0.0.1 is not a public address"),
        ("https://[64:ff9b::a9fe:a9fe]/", "169.254.169.254 is not a public address"),
        ("https://[2002:7f00:1::]/hook", "127.0.0.1 is not a public address"),
        ("https://[2002:a00:1::1]/hook", "10.0.0.1 is not a public address"),
        ("https://[::127.0.0.1]/hook", "127.0.0.1 is not a public address"),
        ("https://[64:ff9b:1::a00:1]/hook", "not a public address"),  # NAT64 local use
        ("https://[::ffff:0:7f00:1]/hook", "127.0.0.1 is not a public address"),  # IPv4-translated
        ("https://[::ffff:0:a9fe:a9fe]/", "169.254.169.254 is not a public address"),
        ("https://[::1]/hook", "::1 is not a public address"),
        ("https://[fec0::1]/hook", "not a public address"),  # site-local
        ("https://[3fff::1]/hook", "not a public address"),  # documentation
        ("https://[5f00::1]/hook", "not a public address"),  # SRv6
    ],
)
def test_refused_urls(dns, url, reason):
    with pytest.raises(UnsafeTarget, match=reason):
        check_url(url)


@pytest.mark.parametrize("address", ["64:ff9b::808:808", "2002:808:808::1"])
def test_an_ipv6_form_of_a_public_ipv4_address_is_allowed(dns, address):
    assert check_url(f"https://[{address}]/hook").addresses == (address,)


def test_a_name_is_allowed_only_when_every_address_is_global(dns):
    dns["hooks.example.com"] = [PUBLIC_V4, PUBLIC_V6]
    target = check_url("https://hooks.example.com/in?x=1")
    assert (target.host, target.port, target.path, target.addresses) == (
        "hooks.example.com", 443, "/in?x=1", (PUBLIC_V4, PUBLIC_V6),
    )  # fmt: skip
    dns["mixed.example.com"] = [PUBLIC_V4, "10.0.0.7"]
    with pytest.raises(UnsafeTarget, match="mixed.example.com resolves to 10.0.0.7"):
        check_url("https://mixed.example.com/")
    with pytest.raises(UnsafeTarget, match="could not be resolved"):
        check_url("https://nowhere.example.com/")


def test_an_international_name_is_resolved_and_sent_in_its_dns_form(dns):
    dns["xn--bcher-kva.example"] = [PUBLIC_V4]
    target = check_url("https://bücher.example/hook")
    assert (target.host, target.addresses) == ("xn--bcher-kva.example", (PUBLIC_V4,))
    with pytest.raises(UnsafeTarget, match="not a valid name"):
        check_url("https://" + "a" * 64 + ".example/")


def test_a_resolver_that_hangs_is_given_up_on(monkeypatch, settings):
    settings.WEBHOOKS_TIMEOUT_SECONDS = 0.2
    monkeypatch.setattr(targets, "resolve", lambda host, port: time.sleep(1) or [PUBLIC_V4])
    started = time.monotonic()
    with pytest.raises(
        UnsafeTarget, match=r"could not be resolved \(resolving slow.example.com took longer than 0.2 s\)"
    ):
        check_url("https://slow.example.com/")
    assert time.monotonic() - started < 0.9


def test_loopback_only_when_allowed_and_only_127_8(dns, settings):
    dns["localhost"] = ["127.0.0.1"]
    with pytest.raises(UnsafeTarget):
        check_url("http://127.0.0.1:8080/")
    settings.WEBHOOKS_ALLOW_LOOPBACK = True
    assert check_url("http://127.0.0.1:8080/").addresses == ("127.0.0.1",)
    assert check_url("http://127.5.5.5/").port == 80
    assert check_url("http://localhost:9000/").addresses == ("127.0.0.1",)
    assert check_url("https://127.0.0.1/").port == 443
    for url in ("http://10.0.0.1/", "http://[::1]/", "https://192.168.0.1/"):
        with pytest.raises(UnsafeTarget):
            check_url(url)
    dns["public.example.com"] = [PUBLIC_V4]
    with pytest.raises(UnsafeTarget, match="Only https"):
        check_url("http://public.example.com/")  # http stays loopback-only


def test_the_api_refuses_an_unsafe_url_with_a_422(api, dns):
    dns["internal.example.com"] = ["192.168.10.10"]
    client = api("admin")
    for url in ("https://internal.example.com/hook", "https://169.254.169.254/", "http://example.com/"):
        response = client.post("/api/v1/webhooks", {"url": url, "event_types": ["*"]}, format="json")
        assert response.status_code == 422, response.content
        assert response.json()["errors"]["url"], response.json()
    dns["hooks.example.com"] = [PUBLIC_V4]
    response = client.post(
        "/api/v1/webhooks", {"url": "https://hooks.example.com/", "event_types": ["*"]}, format="json"
    )
    assert response.status_code == 201, response.content
    endpoint = response.json()["id"]
    response = client.patch(f"/api/v1/webhooks/{endpoint}", {"url": "https://internal.example.com/x"}, format="json")
    assert response.status_code == 422 and "192.168.10.10" in response.json()["errors"]["url"][0]


def test_a_dns_answer_that_turns_private_is_refused_at_connect_time(org, dns, connects):
    dns["hooks.example.com"] = [PUBLIC_V4]
    endpoint = services.create_endpoint(
        organization=org, actor=None, data={"url": "https://hooks.example.com/in", "event_types": ["*"]}
    )
    dns["hooks.example.com"] = ["10.0.0.5"]  # rebinding
    create_counterparty(organization=org, actor=None, data={"name": "Customer"})
    deliver()
    row = WebhookDelivery.objects.get(endpoint=endpoint)
    assert (row.status, row.attempts, row.last_http_status) == ("pending", 1, None)
    assert row.last_error == "Refused: The host hooks.example.com resolves to 10.0.0.5 is not a public address."
    assert connects == []  # no connection was even tried


def test_the_connection_is_pinned_to_the_checked_address(org, dns, connects, receiver, loopback, monkeypatch):
    """The name resolves once per attempt, through the check; http.client never resolves it again
    (the system resolver would fail for this name), and the Host header keeps the name."""
    real_getaddrinfo = socket.getaddrinfo

    def no_dns_for_names(host, *args, **kwargs):
        assert host != "hooks.test", "the name was resolved behind the check's back"
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", no_dns_for_names)
    dns["hooks.test"] = ["127.0.0.1"]
    url = f"http://hooks.test:{receiver.port}/pinned"
    endpoint = services.create_endpoint(organization=org, actor=None, data={"url": url, "event_types": ["*"]})
    create_counterparty(organization=org, actor=None, data={"name": "Customer"})
    deliver()
    [request] = receiver.received
    assert request.headers["Host"] == f"hooks.test:{receiver.port}" and request.path == "/pinned"
    request.verify(endpoint.secret)
    assert connects == [("127.0.0.1", receiver.port)]
    assert dns["calls"] == ["hooks.test", "hooks.test"]  # at save, and at connect


def test_the_next_checked_address_is_tried_when_one_refuses(org, dns, connects, receiver, loopback):
    dns["hooks.test"] = ["127.0.0.2", "127.0.0.1"]  # nothing listens on 127.0.0.2 at that port
    url = f"http://hooks.test:{receiver.port}/pinned"
    endpoint = services.create_endpoint(organization=org, actor=None, data={"url": url, "event_types": ["*"]})
    create_counterparty(organization=org, actor=None, data={"name": "Customer"})
    deliver()
    assert connects == [("127.0.0.2", receiver.port), ("127.0.0.1", receiver.port)]
    receiver.received[0].verify(endpoint.secret)


def _certificate(name: str):
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    pem = certificate.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return pem, key_pem


@pytest.fixture
def tls_receiver(tmp_path):
    """An https receiver on 127.0.0.1 whose certificate is for `hooks.test`."""
    pem, key_pem = _certificate("hooks.test")
    (tmp_path / "cert.pem").write_bytes(pem)
    (tmp_path / "key.pem").write_bytes(key_pem)
    server = ThreadingHTTPServer(("127.0.0.1", 0), None)
    port = server.server_address[1]
    state = Receiver(url=f"https://hooks.test:{port}/tls", port=port)
    server.RequestHandlerClass = _handler(state)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.cafile = str(tmp_path / "cert.pem")
    yield state
    server.shutdown()
    server.server_close()


def test_https_verifies_the_certificate_against_the_name_on_the_pinned_address(
    org, dns, connects, tls_receiver, loopback, monkeypatch
):
    monkeypatch.setattr(targets, "ssl_context", lambda: ssl.create_default_context(cafile=tls_receiver.cafile))
    dns["hooks.test"] = ["127.0.0.1"]
    dns["other.test"] = ["127.0.0.1"]
    good = services.create_endpoint(
        organization=org, actor=None, data={"url": tls_receiver.url, "event_types": ["counterparty.*"]}
    )
    wrong = services.create_endpoint(
        organization=org,
        actor=None,
        data={"url": f"https://other.test:{tls_receiver.port}/tls", "event_types": ["counterparty.*"]},
    )
    create_counterparty(organization=org, actor=None, data={"name": "Customer"})
    deliver()
    assert WebhookDelivery.objects.get(endpoint=good).status == "succeeded"
    [request] = tls_receiver.received
    request.verify(good.secret)
    refused = WebhookDelivery.objects.get(endpoint=wrong)  # the certificate is not for other.test
    assert refused.status == "pending" and "CERTIFICATE_VERIFY_FAILED" in refused.last_error
