"""Checkpoints signed on a PKCS#11 token: a real softhsm2, no mock of the HSM.

Each run of this module gets its own softhsm2 token directory and configuration
(SOFTHSM2_CONF, read when the module is initialised) and each test its own key label, so
nothing touches a token outside tmp_path.
"""

from __future__ import annotations

import base64
import io
import multiprocessing
import os
import subprocess
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pkcs11
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.core.management import CommandError, call_command
from pkcs11 import Attribute, ObjectClass
from pkcs11 import exceptions as p11

from creditledger.ledger import hsm, signing
from creditledger.ledger.services import checkpoint_create
from creditledger.ledger.verify import verify_ledger
from tests.ledger.conftest import TEST_ORIGIN
from tests.ledger.helpers import append, mth

SOFTHSM = Path("/usr/lib/softhsm/libsofthsm2.so")
pytestmark = pytest.mark.skipif(
    not SOFTHSM.exists(),
    reason=f"{SOFTHSM} is absent: install Debian's softhsm2 (apt-get install softhsm2) to run the HSM tests",
)

TOKEN = "creditledger-test"
PIN = "246810"
SO_PIN = "13579135"
ROOT = Path(__file__).resolve().parents[2]


def _forget_signers() -> None:
    signing._pkcs11_signer.cache_clear()
    hsm.reset()


@pytest.fixture(scope="module")
def softhsm(tmp_path_factory):
    """A private softhsm2 token directory with one initialised token; returns its config file."""
    root = tmp_path_factory.mktemp("softhsm")
    (root / "tokens").mkdir()
    conf = root / "softhsm2.conf"
    conf.write_text(
        f"directories.tokendir = {root / 'tokens'}\nobjectstore.backend = file\nlog.level = ERROR\n"
    )
    previous = os.environ.get("SOFTHSM2_CONF")
    os.environ["SOFTHSM2_CONF"] = str(conf)
    subprocess.run(
        ["softhsm2-util", "--init-token", "--free", "--label", TOKEN, "--pin", PIN, "--so-pin", SO_PIN],
        check=True,
        capture_output=True,
    )
    _forget_signers()  # a module loaded before would not see this token directory
    yield conf
    _forget_signers()
    if previous is None:
        del os.environ["SOFTHSM2_CONF"]
    else:
        os.environ["SOFTHSM2_CONF"] = previous


@pytest.fixture
def on_token(settings, softhsm):
    """LEDGER_SIGNER=pkcs11 on the test token, with a key label of this test's own."""
    settings.LEDGER_SIGNER = "pkcs11"
    settings.LEDGER_PKCS11_MODULE = str(SOFTHSM)
    settings.LEDGER_PKCS11_TOKEN = TOKEN
    settings.LEDGER_PKCS11_PIN = PIN
    settings.LEDGER_PKCS11_PIN_FILE = ""
    settings.LEDGER_PKCS11_KEY_LABEL = f"ledger-{uuid.uuid4().hex[:12]}"
    _forget_signers()
    yield settings
    _forget_signers()


def keygen() -> str:
    """Run ledger_hsm_keygen; return what it prints (the verifier key)."""
    out = io.StringIO()
    call_command("ledger_hsm_keygen", stdout=out, stderr=io.StringIO())
    return out.getvalue().strip()


@pytest.fixture
def vkey(on_token) -> str:
    return keygen()


def raw_key_from_vkey(vkey: str) -> bytes:
    """The Ed25519 public key in a verifier key, decoded by hand (no code under test)."""
    raw = base64.b64decode(vkey.split("+", 2)[2])
    assert raw[0] == 1 and len(raw) == 33
    return raw[1:]


def own_session():
    """A session of the test's own on the token, after the code under test has let go of it."""
    hsm.reset()
    token = pkcs11.lib(str(SOFTHSM)).get_token(token_label=TOKEN)
    return token.open(user_pin=PIN)


# --- the key pair ---------------------------------------------------------------------------


def test_keygen_prints_the_verifier_key_of_the_pair_the_signer_uses(vkey):
    verifier = signing.Verifier.parse(vkey)
    assert verifier.name == TEST_ORIGIN
    assert str(signing.get_signer().verifier) == vkey
    assert signing.public_key_info()["verifier_key"] == vkey


def test_keygen_refuses_a_label_already_on_the_token(vkey):
    with pytest.raises(CommandError, match="already holds an object labelled"):
        keygen()
    assert str(signing.get_signer().verifier) == vkey  # the first pair is untouched


def test_the_private_key_is_generated_on_the_token_and_cannot_leave_it(vkey, on_token):
    label = on_token.LEDGER_PKCS11_KEY_LABEL
    with own_session() as session:
        private = session.get_key(object_class=ObjectClass.PRIVATE_KEY, label=label)
        public = session.get_key(object_class=ObjectClass.PUBLIC_KEY, label=label)
        assert private[Attribute.TOKEN] and private[Attribute.PRIVATE]
        assert private[Attribute.SENSITIVE] and private[Attribute.ALWAYS_SENSITIVE]
        assert not private[Attribute.EXTRACTABLE] and private[Attribute.NEVER_EXTRACTABLE]
        with pytest.raises(p11.AttributeSensitive):
            private[Attribute.VALUE]
        assert public[Attribute.EC_POINT] == b"\x04\x20" + raw_key_from_vkey(vkey)
        assert private[Attribute.ID] == public[Attribute.ID]


# --- signing --------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_checkpoint_signed_on_the_token_verifies_with_the_published_key(vkey):
    entries = append(4)
    checkpoint = checkpoint_create()
    assert checkpoint is not None

    body = signing.CheckpointBody.parse(signing.Verifier.parse(vkey).open(checkpoint.note))
    assert (body.origin, body.size, body.hash) == (
        TEST_ORIGIN,
        4,
        mth([bytes(e.body) for e in entries]).hex(),
    )
    assert checkpoint.key_id == signing.Verifier.parse(vkey).key_id
    result = verify_ledger()
    assert result.ok, result.summary()


@pytest.mark.django_db
def test_the_signature_is_plain_ed25519_over_the_note_text(vkey):
    """Checked with the cryptography library alone, as an auditor without our code would."""
    append(2)
    note = checkpoint_create().note
    text, signature_line = note.split("\n\n")
    name, blob = signature_line.removeprefix("— ").rstrip("\n").split(" ")
    raw = base64.b64decode(blob)
    assert name == TEST_ORIGIN
    assert raw[:4].hex() == vkey.split("+")[1]
    Ed25519PublicKey.from_public_bytes(raw_key_from_vkey(vkey)).verify(raw[4:], (text + "\n").encode())


def test_a_forked_child_signs_with_its_own_session(vkey):
    """Celery's prefork pool forks workers: the child must initialise the module itself."""
    signer = signing.get_signer()
    signer.sign("before the fork\n")  # the parent holds a logged-in session
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_sign_in_child, args=(signer, queue))
    child.start()
    outcome = queue.get(timeout=60)
    child.join(timeout=60)
    assert child.exitcode == 0, outcome
    assert signing.Verifier.parse(vkey).open(outcome) == "signed in the child\n"
    assert signing.Verifier.parse(vkey).open(signer.sign("after the fork\n")) == "after the fork\n"


def _sign_in_child(signer, queue) -> None:
    try:
        queue.put(signer.sign("signed in the child\n"))
    except Exception as exc:
        queue.put(repr(exc))
        raise


def test_threads_share_the_session_one_signature_at_a_time(vkey):
    signer = signing.get_signer()
    texts = [f"note {n}\n" for n in range(40)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        notes = list(pool.map(signer.sign, texts))
    verifier = signing.Verifier.parse(vkey)
    assert [verifier.open(note) for note in notes] == texts


def test_a_session_the_token_dropped_is_reopened(vkey, on_token):
    signer = signing.get_signer()
    signer.sign("first\n")
    (_, _, session), *_ = hsm._logins.values()
    session.close()  # logs out too, as an HSM restart would end the login
    assert signing.Verifier.parse(vkey).open(signer.sign("second\n")) == "second\n"


def test_a_key_deleted_from_the_token_is_reported_by_its_label(vkey, on_token):
    signer = signing.get_signer()
    signer.sign("first\n")
    (_, _, session), *_ = hsm._logins.values()
    for obj in session.get_objects({Attribute.LABEL: on_token.LEDGER_PKCS11_KEY_LABEL}):
        obj.destroy()
    with pytest.raises(ImproperlyConfigured, match="LEDGER_PKCS11_KEY_LABEL: no private key labelled"):
        signer.sign("second\n")


# --- configuration errors -----------------------------------------------------------------


def test_a_wrong_pin_names_the_setting_and_is_not_offered_twice(vkey, on_token):
    hsm.reset()
    signing._pkcs11_signer.cache_clear()
    on_token.LEDGER_PKCS11_PIN = "999999"
    with pytest.raises(
        ImproperlyConfigured, match=r"LEDGER_PKCS11_PIN: token .* refused the PIN \(PinIncorrect\)"
    ):
        signing.get_signer()
    with pytest.raises(ImproperlyConfigured, match="refused this PIN before"):
        signing.get_signer()
    on_token.LEDGER_PKCS11_PIN = PIN
    assert str(signing.get_signer().verifier) == vkey


def test_a_missing_token_names_the_setting_and_lists_the_tokens(on_token):
    on_token.LEDGER_PKCS11_TOKEN = "no-such-token"
    with pytest.raises(
        ImproperlyConfigured, match=rf"LEDGER_PKCS11_TOKEN: no token labelled 'no-such-token'.*'{TOKEN}'"
    ):
        signing.get_signer()


def test_a_missing_key_names_the_setting_and_the_command(on_token):
    with pytest.raises(
        ImproperlyConfigured, match=r"LEDGER_PKCS11_KEY_LABEL: no private key labelled.*ledger_hsm_keygen"
    ):
        signing.get_signer()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"LEDGER_PKCS11_MODULE": ""}, "LEDGER_PKCS11_MODULE: not set"),
        ({"LEDGER_PKCS11_MODULE": "/nonexistent/libpkcs11.so"}, "LEDGER_PKCS11_MODULE: no file"),
        ({"LEDGER_PKCS11_TOKEN": ""}, "LEDGER_PKCS11_TOKEN: not set"),
        ({"LEDGER_PKCS11_PIN": ""}, "LEDGER_PKCS11_PIN: not set"),
        ({"LEDGER_PKCS11_PIN_FILE": "/nonexistent/pin"}, "LEDGER_PKCS11_PIN and LEDGER_PKCS11_PIN_FILE"),
        ({"LEDGER_PKCS11_KEY_LABEL": ""}, "LEDGER_PKCS11_KEY_LABEL: not set"),
    ],
)
def test_a_missing_setting_is_named(on_token, change, message):
    for name, value in change.items():
        setattr(on_token, name, value)
    with pytest.raises(ImproperlyConfigured, match=message):
        signing.get_signer()


def test_a_file_that_is_not_a_pkcs11_module_is_refused(on_token, tmp_path):
    module = tmp_path / "not-a-module.so"
    module.write_text("hello")
    on_token.LEDGER_PKCS11_MODULE = str(module)
    with pytest.raises(ImproperlyConfigured, match="LEDGER_PKCS11_MODULE: cannot load"):
        signing.get_signer()


def test_the_pin_can_come_from_a_file_readable_by_its_owner_alone(vkey, on_token, tmp_path):
    pin_file = tmp_path / "pin"
    pin_file.write_text(PIN + "\n")
    pin_file.chmod(0o444)
    on_token.LEDGER_PKCS11_PIN = ""
    on_token.LEDGER_PKCS11_PIN_FILE = str(pin_file)
    with pytest.raises(
        ImproperlyConfigured, match=r"LEDGER_PKCS11_PIN_FILE: .* readable by others.*chmod 400"
    ):
        signing.get_signer()
    pin_file.chmod(0o400)
    assert str(signing.get_signer().verifier) == vkey


# --- the system check -----------------------------------------------------------------------


def test_the_system_check_reports_a_signer_that_cannot_load(on_token):
    (error,) = checks.run_checks(tags=["ledger"])
    assert error.id == "ledger.E001"
    assert "LEDGER_PKCS11_KEY_LABEL" in error.msg


def test_the_system_check_passes_once_the_key_is_there(vkey):
    assert checks.run_checks(tags=["ledger"]) == []


def test_the_system_check_leaves_the_file_signer_alone(settings):
    settings.LEDGER_SIGNER = "file"
    assert checks.run_checks(tags=["ledger"]) == []


def test_manage_py_check_fails_naming_the_setting(softhsm):
    env = dict(
        os.environ,
        LEDGER_SIGNER="pkcs11",
        LEDGER_PKCS11_MODULE=str(SOFTHSM),
        LEDGER_PKCS11_TOKEN=TOKEN,
        LEDGER_PKCS11_PIN=PIN,
        LEDGER_PKCS11_KEY_LABEL="no-such-key",
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode != 0
    assert "ledger.E001" in result.stderr and "LEDGER_PKCS11_KEY_LABEL" in result.stderr
