"""Ed25519 keys on a PKCS#11 token (an HSM; softhsm2 in development and the tests).

The private key is generated on the token (CKA_SENSITIVE, never CKA_EXTRACTABLE) and never
leaves it: a signature is one C_Sign with CKM_EDDSA. The public key is read from the token
(CKA_EC_POINT), so the verifier key and key hash are what a file key's would be.

Sessions. A PKCS#11 login belongs to the whole process, not to one session: a second
C_Login fails and one C_Logout ends every session's login. So a process loads each module
once, at first use, and keeps one logged-in read/write session per token, shared by every
key on it and used only under one lock. A forked child (Celery's prefork pool, gunicorn's
workers) must not use its parent's handles: it initialises the module again and logs in
afresh. A session the token dropped (an HSM restart, a network HSM reconnecting) is
reopened once before the error reaches the caller.

A PIN the token refused is not offered again by this process: an HSM locks its user PIN
after a few wrong tries, and the checkpoint task would otherwise retry every few minutes.

Configuration errors (module, token, PIN, key) raise ImproperlyConfigured naming the
setting; a token failing while it signs raises HsmError.
"""

from __future__ import annotations

import hashlib
import os
import stat
import threading
from dataclasses import dataclass, field
from pathlib import Path

import pkcs11
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass
from pkcs11 import exceptions as p11

# CKA_EC_PARAMS of an Ed25519 key: the DER OID 1.3.101.112, or the PrintableString
# "edwards25519" that PKCS#11 3.0 also allows. We generate keys with the OID.
ED25519_OID = bytes.fromhex("06032b6570")
ED25519_PARAMS = (ED25519_OID, b"\x13\x0cedwards25519")
SELF_TEST = b"creditledger: does the token's public key match its private key?\n"

# Errors after which a fresh session may succeed: the session or its login is gone.
_LOST_SESSION = (
    p11.SessionHandleInvalid,
    p11.SessionClosed,
    p11.UserNotLoggedIn,
    p11.ObjectHandleInvalid,
    p11.KeyHandleInvalid,
    p11.DeviceRemoved,
    p11.TokenNotPresent,
    p11.DeviceError,
)
_PIN_REFUSED = (p11.PinIncorrect, p11.PinInvalid, p11.PinLenRange, p11.PinExpired, p11.PinLocked)


class HsmError(RuntimeError):
    """The token failed while signing (it was configured right when we first used it)."""


@dataclass(frozen=True)
class TokenConfig:
    module: str
    token: str
    pin: str = field(repr=False)
    pin_setting: str  # the setting the PIN came from, for error messages
    key_label: str


def token_config(
    module: str, token: str, pin: str, pin_file: str, key_label: str, *, need_key: bool = True
) -> TokenConfig:
    """Check the LEDGER_PKCS11_* settings and read the PIN; ImproperlyConfigured names the culprit."""
    if not module:
        raise ImproperlyConfigured(
            "LEDGER_PKCS11_MODULE: not set; with LEDGER_SIGNER=pkcs11 it is the path of the token's "
            "PKCS#11 module (e.g. /usr/lib/softhsm/libsofthsm2.so)"
        )
    if not Path(module).is_file():
        raise ImproperlyConfigured(f"LEDGER_PKCS11_MODULE: no file {module}")
    if not token:
        raise ImproperlyConfigured("LEDGER_PKCS11_TOKEN: not set; it is the label of the token")
    if need_key and not key_label:
        raise ImproperlyConfigured("LEDGER_PKCS11_KEY_LABEL: not set; it is the label of the key pair")
    if pin and pin_file:
        raise ImproperlyConfigured("LEDGER_PKCS11_PIN and LEDGER_PKCS11_PIN_FILE: set one of them, not both")
    if pin_file:
        return TokenConfig(module, token, read_pin_file(Path(pin_file)), "LEDGER_PKCS11_PIN_FILE", key_label)
    if not pin:
        raise ImproperlyConfigured(
            "LEDGER_PKCS11_PIN: not set; give the token's user PIN in it or in a file named by "
            "LEDGER_PKCS11_PIN_FILE"
        )
    return TokenConfig(module, token, pin, "LEDGER_PKCS11_PIN", key_label)


def settings_config(*, need_key: bool = True) -> TokenConfig:
    return token_config(
        settings.LEDGER_PKCS11_MODULE,
        settings.LEDGER_PKCS11_TOKEN,
        settings.LEDGER_PKCS11_PIN,
        settings.LEDGER_PKCS11_PIN_FILE,
        settings.LEDGER_PKCS11_KEY_LABEL,
        need_key=need_key,
    )


def read_pin_file(path: Path) -> str:
    """The PIN on the file's first line. The file must be readable by its owner alone."""
    where = f"LEDGER_PKCS11_PIN_FILE: {path}"
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
        text = path.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ImproperlyConfigured(f"{where}: cannot read it ({exc})") from exc
    if mode & 0o077:
        raise ImproperlyConfigured(f"{where} is readable by others (mode {mode:04o}); chmod 400 it")
    pin = text.split("\n", 1)[0].rstrip("\r")
    if not pin:
        raise ImproperlyConfigured(f"{where}: the file's first line is empty")
    return pin


def raw_public_key(ec_point: bytes) -> bytes:
    """The 32 raw bytes of an Ed25519 CKA_EC_POINT: a DER OCTET STRING, or (some modules) bare."""
    if len(ec_point) == 34 and ec_point[:2] == b"\x04\x20":
        return ec_point[2:]
    if len(ec_point) == 32:
        return ec_point
    raise ValueError(f"CKA_EC_POINT of {len(ec_point)} bytes is not an Ed25519 public key")


# --- Module and sessions (every function here runs under _lock) ---------------------------

_lock = threading.RLock()
_libraries: dict[str, tuple[int, object]] = {}  # module path -> (pid that initialised it, lib)
_logins: dict[tuple[str, str], tuple[int, str, object]] = {}  # (module, token) -> (pid, pin, session)
_refused: set[tuple[str, str, bytes]] = set()  # (module, token, sha256 of a PIN the token refused)


def _after_fork_in_child() -> None:
    """A lock held by another thread of the parent would stay held here forever."""
    global _lock
    _lock = threading.RLock()


os.register_at_fork(after_in_child=_after_fork_in_child)


def _library(module: str):
    pid = os.getpid()
    loaded = _libraries.get(module)
    if loaded is not None and loaded[0] == pid:
        return loaded[1]
    try:
        lib = pkcs11.lib(module)
        if loaded is not None:  # a forked child: C_Initialize again, as PKCS#11 requires
            try:
                lib.finalize()
            except p11.PKCS11Error:
                pass
            lib.initialize()
    except p11.PKCS11Error as exc:
        raise ImproperlyConfigured(f"LEDGER_PKCS11_MODULE: cannot load {module}: {exc}") from exc
    _libraries[module] = (pid, lib)
    return lib


def _token(config: TokenConfig):
    lib = _library(config.module)
    try:
        return lib.get_token(token_label=config.token)
    except p11.NoSuchToken as exc:
        labels = ", ".join(repr(t.label) for t in lib.get_tokens() if t.label) or "none"
        raise ImproperlyConfigured(
            f"LEDGER_PKCS11_TOKEN: no token labelled {config.token!r} in {config.module} "
            f"(its tokens: {labels})"
        ) from exc
    except p11.MultipleTokensReturned as exc:
        raise ImproperlyConfigured(
            f"LEDGER_PKCS11_TOKEN: several tokens in {config.module} are labelled {config.token!r}"
        ) from exc


def _session(config: TokenConfig):
    """This process's logged-in read/write session on the token, opened when missing."""
    pid = os.getpid()
    key = (config.module, config.token)
    cached = _logins.get(key)
    if cached is not None and cached[0] == pid and cached[1] == config.pin:
        return cached[2]
    if cached is not None:
        _forget_session(key)  # another PIN, or the parent's session
    pin_hash = hashlib.sha256(config.pin.encode("utf-8")).digest()
    if (*key, pin_hash) in _refused:
        raise ImproperlyConfigured(
            f"{config.pin_setting}: token {config.token!r} refused this PIN before; it is not "
            "offered again until the process restarts (a token locks its PIN after a few wrong tries)"
        )
    token = _token(config)
    try:
        session = token.open(rw=True, user_pin=config.pin)
    except p11.UserAlreadyLoggedIn:
        session = token.open(rw=True)  # something else in this process logged in: share it
    except _PIN_REFUSED as exc:
        _refused.add((*key, pin_hash))
        why = f"{config.pin_setting}: token {config.token!r} refused the PIN ({type(exc).__name__})"
        if isinstance(exc, p11.PinLocked):
            why += "; the PIN is locked: the token's security officer must unlock it"
        raise ImproperlyConfigured(why) from exc
    except p11.PKCS11Error as exc:
        raise ImproperlyConfigured(
            f"LEDGER_PKCS11_TOKEN: cannot log in to token {config.token!r}: {type(exc).__name__} {exc}"
        ) from exc
    _logins[key] = (pid, config.pin, session)
    return session


def _forget_session(key: tuple[str, str]) -> None:
    """Drop a cached session; close it (and so log out) only if this process opened it."""
    cached = _logins.pop(key, None)
    if cached is not None and cached[0] == os.getpid():
        try:
            cached[2].close()
        except p11.PKCS11Error:
            pass


def reset() -> None:
    """Close every session and unload every module: the next use starts afresh.

    For the tests, which give each test module its own softhsm2 token directory (read by
    C_Initialize), and for an operator's shell after changing the token.
    """
    with _lock:
        pid = os.getpid()
        for key in list(_logins):
            _forget_session(key)
        for module, (owner, _) in list(_libraries.items()):
            if owner == pid:
                pkcs11.unload(module)
        _libraries.clear()
        _refused.clear()


# --- Keys -----------------------------------------------------------------------------------


def _find(session, config: TokenConfig, object_class: ObjectClass):
    what = "private" if object_class == ObjectClass.PRIVATE_KEY else "public"
    try:
        key = session.get_key(object_class=object_class, label=config.key_label)
    except p11.NoSuchKey as exc:
        raise ImproperlyConfigured(
            f"LEDGER_PKCS11_KEY_LABEL: no {what} key labelled {config.key_label!r} on token "
            f"{config.token!r}; generate the pair with `manage.py ledger_hsm_keygen`"
        ) from exc
    except p11.MultipleObjectsReturned as exc:
        raise ImproperlyConfigured(
            f"LEDGER_PKCS11_KEY_LABEL: several {what} keys on token {config.token!r} are labelled "
            f"{config.key_label!r}"
        ) from exc
    if key[Attribute.KEY_TYPE] != KeyType.EC_EDWARDS or key[Attribute.EC_PARAMS] not in ED25519_PARAMS:
        raise ImproperlyConfigured(
            f"LEDGER_PKCS11_KEY_LABEL: the {what} key labelled {config.key_label!r} on token "
            f"{config.token!r} is not an Ed25519 key"
        )
    return key


def label_taken(session, label: str) -> bool:
    return next(iter(session.get_objects({Attribute.LABEL: label})), None) is not None


class TokenKey:
    """An Ed25519 key pair on a token, found by label. sign() is C_Sign with CKM_EDDSA."""

    def __init__(self, config: TokenConfig):
        """Find the pair, read the public key and have the token sign a test message."""
        self.config = config
        self._private = None  # (session, private key object) of the last use
        try:
            with _lock:
                session = _session(config)
                self._private = (session, _find(session, config, ObjectClass.PRIVATE_KEY))
                public = _find(session, config, ObjectClass.PUBLIC_KEY)
                self.public_bytes = raw_public_key(public[Attribute.EC_POINT])
                signature = self._sign(session, SELF_TEST)
        except ValueError as exc:
            raise ImproperlyConfigured(
                f"LEDGER_PKCS11_KEY_LABEL: the public key labelled {config.key_label!r}: {exc}"
            ) from exc
        except p11.MechanismInvalid as exc:
            raise ImproperlyConfigured(
                f"LEDGER_PKCS11_MODULE: token {config.token!r} does not sign with CKM_EDDSA (Ed25519)"
            ) from exc
        except p11.PKCS11Error as exc:
            raise HsmError(
                f"loading key {config.key_label!r} from PKCS#11 token {config.token!r} failed: "
                f"{type(exc).__name__} {exc}"
            ) from exc
        try:
            Ed25519PublicKey.from_public_bytes(self.public_bytes).verify(signature, SELF_TEST)
        except InvalidSignature as exc:
            raise ImproperlyConfigured(
                f"LEDGER_PKCS11_KEY_LABEL: the public and private keys labelled {config.key_label!r} "
                f"on token {config.token!r} are not one pair"
            ) from exc

    def __repr__(self) -> str:
        return f"<TokenKey {self.config.key_label!r} on {self.config.token!r}>"

    def _sign(self, session, data: bytes) -> bytes:
        if self._private is None or self._private[0] is not session:
            self._private = (session, _find(session, self.config, ObjectClass.PRIVATE_KEY))
        return self._private[1].sign(data, mechanism=Mechanism.EDDSA)

    def sign(self, data: bytes) -> bytes:
        """The 64-byte Ed25519 signature of `data`, made on the token.

        When the session or its login is gone, one more try on a fresh session; any other
        failure of the token is an HsmError.
        """
        with _lock:
            try:
                return self._sign(_session(self.config), data)
            except _LOST_SESSION:
                _forget_session((self.config.module, self.config.token))
            except p11.PKCS11Error as exc:
                raise self._failed(exc) from exc
            try:
                return self._sign(_session(self.config), data)
            except p11.PKCS11Error as exc:
                _forget_session((self.config.module, self.config.token))
                raise self._failed(exc) from exc

    def _failed(self, exc: Exception) -> HsmError:
        return HsmError(f"signing on PKCS#11 token {self.config.token!r} failed: {type(exc).__name__} {exc}")


def generate_key(config: TokenConfig) -> bytes:
    """Generate an Ed25519 key pair labelled config.key_label on the token; return the public key.

    The pair is stored on the token (CKA_TOKEN), the private key is sensitive and never
    extractable, so no one, this program included, can read it off the token. Refuses a
    label some object on the token already has: a second pair would make the label ambiguous.
    """
    with _lock:
        session = _session(config)
        if label_taken(session, config.key_label):
            raise ImproperlyConfigured(
                f"LEDGER_PKCS11_KEY_LABEL: token {config.token!r} already holds an object labelled "
                f"{config.key_label!r}; choose another label for a new key"
            )
        key_id = os.urandom(8)  # CKA_ID pairs the two halves, as many tools expect
        try:
            public, _ = _generate_pair(session, config.key_label, key_id)
            return raw_public_key(public[Attribute.EC_POINT])
        except p11.PKCS11Error as exc:
            raise HsmError(
                f"generating an Ed25519 pair on PKCS#11 token {config.token!r} failed: "
                f"{type(exc).__name__} {exc}"
            ) from exc


def _generate_pair(session, label: str, key_id: bytes):
    return session.generate_keypair(
        KeyType.EC_EDWARDS,
        mechanism=Mechanism.EC_EDWARDS_KEY_PAIR_GEN,
        store=True,
        label=label,
        id=key_id,
        public_template={
            Attribute.EC_PARAMS: ED25519_OID,
            Attribute.TOKEN: True,
            Attribute.PRIVATE: False,
            Attribute.VERIFY: True,
        },
        private_template={
            Attribute.TOKEN: True,
            Attribute.PRIVATE: True,
            Attribute.SENSITIVE: True,
            Attribute.EXTRACTABLE: False,
            Attribute.SIGN: True,
        },
    )
