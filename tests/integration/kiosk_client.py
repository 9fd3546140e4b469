"""kiosk_client.py - a kiosk terminal's credentials for the integration tests: key pair and signed headers.

Builds requests the way the kiosk program does (lib/hf_reqsign.h is the reference for the format), from an
independent implementation (Python's cryptography package), so a test that passes proves the core accepts
what a correct terminal sends, not merely what our own C code produces. The signed message is

    "hifadhi-kiosk-v1\\n" METHOD "\\n" PATH "\\n" TIMESTAMP "\\n" NONCE "\\n" KIOSK_NO "\\n" hex(SHA-256(body))

Standard library and `cryptography` only.

    key = KioskKey()
    enrol = {"kiosk_no": no, "enrolment_code": code, "public_key": key.public_b64}
    headers = signed_headers(key, no, "POST", "/api/v1/kiosk/ping", body_bytes)
"""

import base64
import hashlib
import os
import time

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

DOMAIN = "hifadhi-kiosk-v1"

H_KIOSK = "X-Hifadhi-Kiosk"
H_TIMESTAMP = "X-Hifadhi-Timestamp"
H_NONCE = "X-Hifadhi-Nonce"
H_SIGNATURE = "X-Hifadhi-Signature"


class KioskKey:
    """An Ed25519 key pair. seed: 32 bytes for a reproducible key (known-answer tests); random otherwise."""

    def __init__(self, seed=None):
        if seed is None:
            self._sk = Ed25519PrivateKey.generate()
        else:
            if len(seed) != 32:
                raise ValueError("an Ed25519 seed is 32 bytes")
            self._sk = Ed25519PrivateKey.from_private_bytes(bytes(seed))
        self.public_raw = self._sk.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        # What POST /kiosks/enrol takes as "public_key": standard padded base64 of the 32 raw bytes.
        self.public_b64 = base64.b64encode(self.public_raw).decode("ascii")

    def fingerprint(self):
        """What GET /kiosks lists as public_key_fingerprint: hex of the first 8 bytes of SHA-256(key)."""
        return hashlib.sha256(self.public_raw).digest()[:8].hex()

    def sign(self, message):
        return self._sk.sign(message)


def new_nonce():
    """base64url without padding of 16 random bytes (22 characters), like hf_reqsign_nonce."""
    return base64.urlsafe_b64encode(os.urandom(16)).decode("ascii").rstrip("=")


def message(method, path, ts, nonce, kiosk_no, body_bytes=b""):
    """The exact bytes a terminal signs. path: as sent, without a query string."""
    if "?" in path:
        raise ValueError("kiosk requests carry no query string")
    digest = hashlib.sha256(body_bytes or b"").hexdigest()
    text = "\n".join([DOMAIN, method, path, str(ts), nonce, kiosk_no, digest])
    return text.encode("ascii")


def signed_headers(key, kiosk_no, method, path, body_bytes=b"", ts=None, nonce=None):
    """The four X-Hifadhi-* headers for one request, as a dict.

    ts: unix seconds (int or decimal string; default now); nonce: default a fresh one. Pass both to replay
    or to forge a stale request on purpose.
    """
    if isinstance(body_bytes, str):
        body_bytes = body_bytes.encode("utf-8")
    ts = str(int(time.time()) if ts is None else ts)
    nonce = new_nonce() if nonce is None else nonce
    sig = key.sign(message(method, path, ts, nonce, kiosk_no, body_bytes))
    return {
        H_KIOSK: kiosk_no,
        H_TIMESTAMP: ts,
        H_NONCE: nonce,
        H_SIGNATURE: base64.b64encode(sig).decode("ascii"),
    }


if __name__ == "__main__":
    # Self-check against the known-answer vector of tests/unit/test_hf_reqsign.c.
    k = KioskKey(bytes(range(1, 33)))
    assert k.public_b64 == "ebVWLo/mVPlAeLES6KmLp5AfhTrmlb7X4OORC60ElmQ=", k.public_b64
    h = signed_headers(k, "K12345678", "POST", "/api/v1/kiosk/payments", b'{"amount":1500}',
                       ts=1718000000, nonce="AAECAwQFBgcICQoLDA0ODw")
    want = "8QuQapJ2n6Be2Y+CyZfyGoZGEOhqozpxU5hjGjcGkMWSbPLCsWt5lVU5CKK0Dr7geo90QQfzl54ABUjoDOpcDQ=="
    assert h[H_SIGNATURE] == want, h
    assert len(new_nonce()) == 22
    print("kiosk_client: known-answer vector ok")
