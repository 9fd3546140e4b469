"""kiosk_client.py - a kiosk terminal's credentials for the integration tests: key pair and signed headers.

Builds requests the way the kiosk program does (lib/hf_reqsign.h is the reference for the format), from an
independent implementation (Python's cryptography package), so a test that passes proves the core accepts
what a correct terminal sends, not merely what our own C code produces. The signed message is

    "hifadhi-kiosk-v1\\n" METHOD "\\n" PATH "\\n" TIMESTAMP "\\n" NONCE "\\n" KIOSK_NO "\\n" hex(SHA-256(body))

Biometric templates travel sealed (libsodium's crypto_box_seal): to core's seal_pk (GET kiosk/me) when a
kiosk enrols one, and to the kiosk's own X25519 key (derived from its Ed25519 key) when core hands one to a
pay point. seal_to() and KioskKey.open_sealed() do both ends with PyNaCl (Debian's python3-nacl), again
independently of the C code.

Standard library, `cryptography` and `nacl` only.

    key = KioskKey()
    enrol = {"kiosk_no": no, "enrolment_code": code, "public_key": key.public_b64}
    headers = signed_headers(key, no, "POST", "/api/v1/kiosk/ping", body_bytes)
    k = Kiosk.register(core, "AHERO-1", as_="payment_officer")      # registered and enrolled
    st, _, body = k.call("POST", "/api/v1/kiosk/verifications", {...})
"""

import base64
import hashlib
import json
import os
import time
import uuid

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from nacl.public import PublicKey, SealedBox
from nacl.signing import SigningKey

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

    @property
    def seed(self):
        """The 32-byte Ed25519 seed (libsodium's secret key is seed || public key)."""
        return self._sk.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                      serialization.NoEncryption())

    def open_sealed(self, sealed_b64):
        """Opens what core sealed to this kiosk: crypto_box_seal_open with the X25519 form of the key
        (crypto_sign_ed25519_sk_to_curve25519). Raises nacl.exceptions.CryptoError when it was not for us."""
        box = SealedBox(SigningKey(self.seed).to_curve25519_private_key())
        return box.decrypt(base64.b64decode(sealed_b64, validate=True))


def seal_to(pk_b64, data):
    """crypto_box_seal(data, pk) as standard base64: how a kiosk sends a capture to core's seal_pk."""
    return base64.b64encode(SealedBox(PublicKey(base64.b64decode(pk_b64))).encrypt(bytes(data))).decode("ascii")


def fake_template(tag=b""):
    """Bytes that look like a libfprint print to core (the "FP3" magic of fp_print_serialize, then data)."""
    return b"FP3" + hashlib.sha256(tag or os.urandom(16)).digest() * 8 + bytes(tag)


class Kiosk:
    """An enrolled terminal of a Core: its number, key, and signed JSON requests."""

    def __init__(self, core, key, kiosk_no, pay_point):
        self.core, self.key, self.kiosk_no, self.pay_point = core, key, kiosk_no, pay_point

    @classmethod
    def register(cls, core, pay_point, as_="payment_officer", mode=None):
        """Staff register a terminal for pay_point, it enrols a fresh key; mode "enrolment" makes it an
        enrolment station (PATCH /kiosks/{no})."""
        st, _, reg = core.post("/api/v1/kiosks", {"pay_point": pay_point}, as_=as_)
        if st != 201:
            raise AssertionError(f"kiosk registration: {st} {reg}")
        key = KioskKey()
        st, _, b = core.post("/api/v1/kiosks/enrol", {"kiosk_no": reg["kiosk_no"],
                                                      "enrolment_code": reg["enrolment_code"],
                                                      "public_key": key.public_b64}, as_=None)
        if st != 200:
            raise AssertionError(f"kiosk enrolment: {st} {b}")
        if mode:
            st, _, b = core.patch(f"/api/v1/kiosks/{reg['kiosk_no']}", {"mode": mode}, as_=as_)
            if st != 200:
                raise AssertionError(f"kiosk mode: {st} {b}")
        return cls(core, key, reg["kiosk_no"], pay_point)

    def call(self, method, path, body=None, core=None, timeout=30):
        """A signed request (body: a JSON-able object, or bytes sent as they are); (status, headers, body)."""
        raw = body if isinstance(body, (bytes, bytearray)) else (json.dumps(body).encode() if body is not None else b"")
        hdrs = signed_headers(self.key, self.kiosk_no, method, path, raw)
        if raw:
            hdrs["Content-Type"] = "application/json"
        return (core or self.core).request(method, path, raw_body=raw or None, headers=hdrs, as_=None,
                                           timeout=timeout)

    def enrol_template(self, ben_no, template, finger="right_thumb", seal_pk=None):
        """POST kiosk/templates (an enrolment station): template sealed to core's seal_pk."""
        if seal_pk is None:
            seal_pk = self.call("GET", "/api/v1/kiosk/me")[2]["seal_pk"]
        return self.call("POST", "/api/v1/kiosk/templates", {
            "ben_no": ben_no, "finger": finger, "driver": "virtual_image", "device": "virtual_image-0",
            "format": "fprint3", "sealed": seal_to(seal_pk, template)})

    def verify(self, ben_no, result="match", attempt=1):
        """POST kiosk/verifications; (status, body)."""
        st, _, b = self.call("POST", "/api/v1/kiosk/verifications", {"ben_no": ben_no, "result": result,
                                                                     "attempt": attempt, "driver": "virtual_image"})
        return st, b

    def token(self, ben_no):
        """A fingerprint verification token for ben_no (the person has a template)."""
        st, b = self.verify(ben_no)
        if st != 201:
            raise AssertionError(f"verification of {ben_no}: {st} {b}")
        return b["verification"]

    def collect(self, payment, ben_no, token, request_id=None, core=None, timeout=30):
        """POST kiosk/collections with a fresh request id unless one is given; (status, body, request_id)."""
        rid = request_id or str(uuid.uuid4())
        st, _, b = self.call("POST", "/api/v1/kiosk/collections", {"payment": payment, "ben_no": ben_no,
                                                                   "verification": token, "request_id": rid},
                             core=core, timeout=timeout)
        return st, b, rid


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
