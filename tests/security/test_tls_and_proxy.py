"""HTTPS served directly (minimum TLS 1.2, certificate reloaded on SIGHUP) and behind a reverse
proxy (trusted proxies decide the client address and the scheme)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives import serialization

from tests.dispatch.service_process import wait_ready_file
from tests.security.conftest import PASSWORD, MakeLab, params, self_signed
from webcallback.web.tls import ReloadableCertificate


def peer_certificate(port: int) -> bytes:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, ctx.wrap_socket(raw) as tls:
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return der


def permissive_server_handshake(client: ssl.SSLContext, cert_path: Path, key_path: Path) -> str | None:
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.minimum_version = ssl.TLSVersion.TLSv1_1
    server_ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    server_ctx.load_cert_chain(cert_path, key_path)
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]

        def accept() -> None:
            conn, _ = listener.accept()
            with contextlib.suppress(ssl.SSLError, OSError), server_ctx.wrap_socket(conn, server_side=True):
                pass

        thread = threading.Thread(target=accept)
        thread.start()
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, client.wrap_socket(raw) as tls:
            version = tls.version()
        thread.join(5)
    return version


def test_password_over_plain_http_is_refused(make_lab: MakeLab, db_url: str) -> None:
    lab = make_lab(db_url)
    with lab.server() as url:
        reply = httpx.get(url + "/webcallback", params=params())
    assert reply.status_code == 403
    assert reply.json() == {
        "message": "Passwords are accepted only over HTTPS.",
        "error": "password-needs-https",
    }


def test_https_with_a_self_signed_certificate_accepts_the_password(
    make_lab: MakeLab, sqlite_url: str, tmp_path: Path
) -> None:
    cert_path, key_path, _ = self_signed(tmp_path)
    cert = ReloadableCertificate(str(cert_path), str(key_path))
    lab = make_lab(sqlite_url)
    with lab.server(ssl_context=cert.context) as url:
        reply = httpx.get(
            url + "/webcallback", params=params(), verify=ssl.create_default_context(cafile=cert_path)
        )
    assert reply.status_code == 200, reply.text


def test_tls_1_1_is_refused_and_1_2_accepted(make_lab: MakeLab, sqlite_url: str, tmp_path: Path) -> None:
    cert_path, key_path, _ = self_signed(tmp_path)
    cert = ReloadableCertificate(str(cert_path), str(key_path))
    lab = make_lab(sqlite_url)
    with lab.server(ssl_context=cert.context) as url:
        port = int(url.rsplit(":", 1)[1])
        old = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        old.check_hostname, old.verify_mode = False, ssl.CERT_NONE
        old.minimum_version = old.maximum_version = ssl.TLSVersion.TLSv1_1
        old.set_ciphers("DEFAULT:@SECLEVEL=0")  # let this client offer 1.1 at all
        with (
            socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
            pytest.raises(ssl.SSLError) as refused,
        ):
            old.wrap_socket(raw)
        assert refused.value is not None
        # Control: the same client does complete TLS 1.1 with a server that allows it, so the
        # refusal above is our server's minimum version, not this client's limits.
        assert permissive_server_handshake(old, cert_path, key_path) == "TLSv1.1"
        new = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        new.check_hostname, new.verify_mode = False, ssl.CERT_NONE
        new.minimum_version = new.maximum_version = ssl.TLSVersion.TLSv1_2
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, new.wrap_socket(raw) as tls:
            assert tls.version() == "TLSv1.2"


def test_certificate_reload_in_process(make_lab: MakeLab, sqlite_url: str, tmp_path: Path) -> None:
    cert_path, key_path, first = self_signed(tmp_path, "first")
    cert = ReloadableCertificate(str(cert_path), str(key_path))
    lab = make_lab(sqlite_url)
    with lab.server(ssl_context=cert.context) as url:
        port = int(url.rsplit(":", 1)[1])
        assert peer_certificate(port) == first.public_bytes(serialization.Encoding.DER)
        new_cert, new_key, second = self_signed(tmp_path, "second")
        cert_path.write_bytes(new_cert.read_bytes())
        key_path.write_bytes(new_key.read_bytes())
        assert cert.reload()
        assert peer_certificate(port) == second.public_bytes(serialization.Encoding.DER)
        key_path.write_text("garbage")  # a broken file keeps the old certificate
        assert not cert.reload()
        assert peer_certificate(port) == second.public_bytes(serialization.Encoding.DER)


@pytest.mark.children
def test_sighup_reloads_the_certificate_of_webcallback_run(tmp_path: Path, sqlite_url: str) -> None:
    cert_path, key_path, first = self_signed(tmp_path, "first")
    config = tmp_path / "webcallback.toml"
    config.write_text(
        f'[server]\nlisten = "127.0.0.1:0"\ntls_cert = "{cert_path}"\ntls_key = "{key_path}"\n'
        f'[database]\nurl = "{sqlite_url}"\n[secrets]\nkey_file = "{tmp_path / "secret.key"}"\n'
        '[engine]\nkind = "none"\n'
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2] / "src")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "webcallback", "run", "--config", str(config),
         "--ready-file", str(tmp_path / "ready.json")],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        port = int(wait_ready_file(proc, tmp_path / "ready.json")["http"].rsplit(":", 1)[1])
        assert peer_certificate(port) == first.public_bytes(serialization.Encoding.DER)
        new_cert, new_key, second = self_signed(tmp_path, "second")
        os.replace(new_cert, cert_path)
        os.replace(new_key, key_path)
        proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while peer_certificate(port) != second.public_bytes(serialization.Encoding.DER):
            assert time.monotonic() < deadline, "certificate not reloaded"
            time.sleep(0.1)
        assert proc.poll() is None  # still the same process, still serving
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=10)
    assert b"TLS certificate reloaded" in err


def test_behind_a_trusted_proxy(make_lab: MakeLab, db_url: str) -> None:
    lab = make_lab(db_url, server__trusted_proxies="127.0.0.1/32", security__lockout__max_failures_per_ip="2")
    with lab.server() as url, httpx.Client(base_url=url) as http:
        via_https = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.7"}
        assert http.get("/webcallback", params=params(), headers=via_https).status_code == 200
        assert (
            http.get("/webcallback", params=params(), headers={"X-Forwarded-Proto": "http"}).status_code
            == 403
        )
        # Failures are counted against the client the proxy names, not against the proxy.
        for _ in range(2):
            http.get("/webcallback", params=params(user="bob", password="x"), headers=via_https)
        assert http.get("/webcallback", params=params(user="bob"), headers=via_https).status_code == 429
        other = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "198.51.100.9"}
        assert http.get("/webcallback", params=params(user="bob"), headers=other).status_code == 200
    assert "ip:203.0.113.7" in lab.cli("security", "lockouts").output


def test_forwarded_headers_from_an_untrusted_peer_are_ignored(make_lab: MakeLab, db_url: str) -> None:
    lab = make_lab(db_url)  # no trusted proxies
    with lab.server() as url:
        spoofed = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.7"}
        reply = httpx.get(url + "/webcallback", params=params(), headers=spoofed)
    assert reply.status_code == 403 and reply.json()["error"] == "password-needs-https"
    assert PASSWORD not in reply.text
