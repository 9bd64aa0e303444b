"""The HTTPS rule and the same-origin rule: credentials go to the platform and nowhere else."""

from __future__ import annotations

import ssl
from datetime import UTC, datetime, timedelta
from ipaddress import ip_address
from pathlib import Path

import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from yarl import URL

from salync_core.errors import DataError, InsecureURLError
from salync_core.http import HttpClient
from salync_core.http.urls import check_url_security, is_loopback, path_segment, resolve
from salync_core.platform import Credentials
from salync_core.secrets import Secret
from salync_core.testing import Emulator
from salync_core.testing.emulator import json_response

KEY = Credentials("header", "X-API-KEY", Secret("k-123"))


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("LOCALHOST.", True),
        ("10.0.0.1", False),
        ("128.0.0.1", False),
        ("example.com", False),
        ("localhost.example.com", False),
        ("", False),
    ],
)
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


@pytest.mark.parametrize(
    "url",
    [
        "https://api.example.com/v1",
        "http://127.0.0.1:8080/v1",
        "http://localhost/",
        "http://[::1]:9/",
    ],
)
def test_https_or_loopback_is_allowed(url: str) -> None:
    assert check_url_security(url) == URL(url)


@pytest.mark.parametrize(
    "url",
    ["http://api.example.com/v1", "http://10.1.2.3/", "ftp://127.0.0.1/", "api.example.com/v1"],
)
def test_plain_http_to_a_remote_host_is_refused_at_construction(url: str) -> None:
    with pytest.raises(InsecureURLError) as caught:
        HttpClient(connection="shop", base_url=url, credentials=KEY)
    assert str(caught.value).startswith("shop: ")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("products", "https://h.example/v1/products"),
        ("/products", "https://h.example/v1/products"),
        ("products?page=2", "https://h.example/v1/products?page=2"),
        ("https://h.example/v1/products?$skip=50", "https://h.example/v1/products?$skip=50"),
    ],
)
def test_resolve_against_the_base_url(url: str, expected: str) -> None:
    assert resolve(URL("https://h.example/v1"), url) == URL(expected)


def test_same_origin_ignores_host_case_and_the_default_port() -> None:
    assert resolve(URL("https://h.example/v1"), "https://H.EXAMPLE:443/other").path == "/other"


def test_params_are_added_to_the_query() -> None:
    url = resolve(URL("https://h.example/v1/"), "items?a=1", {"b": "2 3"})
    assert url.query == {"a": "1", "b": "2 3"}


@pytest.mark.parametrize(
    "url",
    [
        "https://evil.example/v1/products",
        "//evil.example/v1/products",
        "http://h.example/v1/products",
        "https://h.example:8443/v1/products",
    ],
)
def test_absolute_url_on_another_origin_is_refused(url: str) -> None:
    with pytest.raises(InsecureURLError, match="refusing to send credentials"):
        resolve(URL("https://h.example/v1"), url, connection="shop")


class Echo(Emulator):
    name = "echo"

    def setup_routes(self, router: web.UrlDispatcher) -> None:
        router.add_get("/v1/items", self.items)

    async def items(self, request: web.Request) -> web.Response:
        return json_response({"key": request.headers.get("X-API-KEY")})


@pytest.mark.anyio
async def test_a_next_link_to_another_origin_is_refused_before_sending() -> None:
    target, attacker = Echo(), Echo()
    async with (
        target.running(),
        attacker.running(),
        HttpClient(connection="shop", base_url=target.root_url + "/v1", credentials=KEY) as client,
    ):
        data, _ = await client.get_json(target.root_url + "/v1/items?page=2")
        assert data == {"key": "k-123"}
        with pytest.raises(InsecureURLError):
            await client.get_json(attacker.root_url + "/v1/items")
    assert attacker.stats.requests == 0


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 signed by itself, and its key."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "salync emulator")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ip_address("127.0.0.1"))]), False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


@pytest.mark.anyio
async def test_ca_file_trusts_an_emulators_self_signed_certificate(tmp_path: Path) -> None:
    cert_file, key_file = self_signed(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    runner = web.AppRunner(Echo().app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    port = runner.addresses[0][1]
    try:
        base = f"https://127.0.0.1:{port}/v1"
        async with HttpClient(
            connection="shop", base_url=base, credentials=KEY, ca_file=str(cert_file)
        ) as client:
            data, _ = await client.get_json("items")
        assert data == {"key": "k-123"}
        async with HttpClient(connection="shop", base_url=base, credentials=KEY) as client:
            with pytest.raises(InsecureURLError, match="set ca_file"):
                await client.get_json("items")
    finally:
        await runner.cleanup()


@pytest.mark.parametrize(
    ("value", "segment"),
    [
        ("5", "5"),
        (7, "7"),
        ("AB/12", "AB%2F12"),
        ("a?b#c", "a%3Fb%23c"),
        ("50%", "50%25"),
        ("x..y", "x..y"),
        ("prd_01H", "prd_01H"),
    ],
)
def test_an_id_becomes_one_escaped_path_segment(value: object, segment: str) -> None:
    assert path_segment(value) == segment
    target = resolve(URL("https://api.example.com/v1"), f"products/{segment}/archive")
    assert target.raw_path == f"/v1/products/{segment}/archive"


@pytest.mark.parametrize(
    "value",
    ["..", ".", "../../admin", "%2e%2e", "%2E%2E/x", "..%2Fadmin", "%252e%252e", "..\\a", ""],
)
def test_an_id_that_would_leave_the_path_is_a_data_error(value: str) -> None:
    with pytest.raises(DataError, match="URL path"):
        path_segment(value)


@pytest.mark.parametrize(
    "path", ["../admin", "%2e%2e/admin", "Products(../../admin)", "a/./b", "x/..%2F..%2Fadmin"]
)
def test_a_relative_path_never_leaves_the_base_path(path: str) -> None:
    with pytest.raises(InsecureURLError, match="leave /rest/Catalog"):
        resolve(URL("https://api.example.com/rest/Catalog"), path, connection="pim")
