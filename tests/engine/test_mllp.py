"""The MLLP bridge (``python -m engine mllp``) on the real broker: a sender's 200 messages over loopback with the
bridge killed (SIGKILL) mid-way and restarted; every message ends up stored and coded exactly once (a message
written but not yet ACKed when the bridge died is resent and may be stored twice: its Bundle is byte-identical,
so no note is coded differently or lost). Also: AR for oversize and non-HL7 input."""

from __future__ import annotations

import signal
import socket
import time

import hl7
import pytest
from hl7.client import MLLPClient

from bench.devservers import free_port
from bench.hl7msg import mdm
from engine.io.mllp import ack, record_key
from tests.fixtures.servers import EngineProcess, bundle_note_key, create_topic, engine_env, read_topic

pytestmark = pytest.mark.servers
N, KILL_AT = 200, 80


def _wait_listening(port: int, process: EngineProcess, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert process.process.poll() is None, process.logs()[-2000:]
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise AssertionError("bridge did not listen")


def _ack_code(reply: bytes) -> str:
    return str(hl7.parse(reply.strip(b"\x0b\x1c\r").decode("latin-1")).segment("MSA")(1))


def test_ack_codes_and_keys():
    message = mdm("T02", "DOC-1", ["Asthma."]).bytes()
    reply = hl7.parse(ack(message, "AE", "not stored | resend").decode())
    assert str(reply.segment("MSA")(1)) == "AE" and str(reply.segment("MSA")(2)) == "DOC-1-T02"
    assert reply.unescape(str(reply.segment("MSA")(3))) == "not stored | resend"
    assert _ack_code(ack(b"garbage", "AR", "x")) == "AR"
    key = record_key(message)
    assert key and b"MRN" not in key and key == record_key(mdm("T11", "DOC-1", []).bytes())  # one patient, one key


def test_bridge_killed_midway_loses_nothing_and_codes_each_message_once(kafka_bootstrap, redis_url, unique_topic, tmp_path, handbuilt_model_repo):
    for purpose in ("in", "out", "dlq", "audit"):
        create_topic(kafka_bootstrap, unique_topic(purpose), 3)
    env = engine_env(kafka_bootstrap, redis_url, unique_topic, handbuilt_model_repo, engine_input_format="hl7v2")
    port = free_port()
    args = ["--port", str(port), "--max-message-bytes", "20000"]
    messages = [mdm("T02", f"DOC-{i}", [f"Note {i}: history of hypertension and asthma."], mrn=f"MRN-{i % 17}").bytes() for i in range(N)]

    bridge = EngineProcess(tmp_path, env, args, name="bridge1", command="mllp")
    restarted = None
    client = None
    acked, attempts = set(), 0
    try:
        _wait_listening(port, bridge)
        i = 0
        while i < N:
            attempts += 1
            assert attempts < N * 5, "too many resends"
            try:
                if client is None:
                    client = MLLPClient("127.0.0.1", port)
                if i == KILL_AT and restarted is None:  # sent, stored or not, but the ACK never read: then the bridge dies
                    client.socket.sendall(b"\x0b" + messages[i] + b"\x1c\r")
                    bridge.stop(signal.SIGKILL)
                    raise ConnectionResetError
                reply = client.send_message(messages[i])
                if not reply:
                    raise ConnectionResetError
                code = _ack_code(reply)
            except OSError:
                if client is not None:
                    client.close()
                client = None
                if i == KILL_AT and restarted is None:
                    restarted = EngineProcess(tmp_path, env, args, name="bridge2", command="mllp")
                    _wait_listening(port, restarted)
                else:
                    time.sleep(0.2)
                continue  # unACKed: resend the same message (MLLP's rule)
            if code == "AA":
                acked.add(i)
                i += 1
            else:
                assert code == "AE", code
                time.sleep(0.2)
        # AR for what can never be stored; the connection is then closed by the bridge
        for payload, reason in ((b"PID|1||X\r", "MSH"), (mdm("T02", "BIG", ["x" * 30000]).bytes(), "exceeds")):
            with MLLPClient("127.0.0.1", port) as c:
                reply = c.send_message(payload)
            assert _ack_code(reply) == "AR" and reason.encode() in reply
    finally:
        if client is not None:
            client.close()
        bridge.stop()
        if restarted is not None:
            restarted.process.send_signal(signal.SIGTERM)
            assert restarted.wait(timeout_s=30) == 0, restarted.logs()[-2000:]
            assert "stored (AA)" in restarted.logs()
    assert restarted is not None and acked == set(range(N))

    stored = read_topic(kafka_bootstrap, unique_topic("in"), expected=N)
    assert {r.value.rstrip(b"\r") for r in stored} == {m.rstrip(b"\r") for m in messages}  # nothing lost
    assert N <= len(stored) <= N + 1  # at most the one message in flight at the kill, twice

    engine = EngineProcess(tmp_path, env, ["--max-notes", str(len(stored)), "--idle-exit-s", "30"])
    try:
        assert engine.wait(timeout_s=180) == 0, engine.logs()[-3000:]
    finally:
        engine.stop()
    out = read_topic(kafka_bootstrap, unique_topic("out"), expected=len(stored))
    assert read_topic(kafka_bootstrap, unique_topic("dlq"), expected=0, settle_s=0.5) == []
    by_note: dict[str, set[bytes]] = {}
    for r in out:
        by_note.setdefault(bundle_note_key(r.value), set()).add(r.value)
    assert len(by_note) == N and all(len(v) == 1 for v in by_note.values())  # each note coded once (a repeat is byte-identical)


def _self_signed(tmp_path):
    """A CA-less self-signed server certificate for 127.0.0.1 (cryptography), as PEM files."""
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return cert_path, key_path


def test_tls_bridge_acks_over_tls_only(kafka_bootstrap, redis_url, unique_topic, tmp_path, handbuilt_model_repo):
    import ssl

    cert, key = _self_signed(tmp_path)
    create_topic(kafka_bootstrap, unique_topic("in"), 1)
    env = engine_env(kafka_bootstrap, redis_url, unique_topic, handbuilt_model_repo)
    port = free_port()
    bridge = EngineProcess(tmp_path, env, ["--port", str(port), "--tls-cert", str(cert), "--tls-key", str(key)], name="tls", command="mllp")
    message = mdm("T02", "DOC-TLS", ["Asthma."]).bytes()
    try:
        _wait_listening(port, bridge)
        context = ssl.create_default_context(cafile=str(cert))
        with socket.create_connection(("127.0.0.1", port), timeout=30) as raw, context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            tls.sendall(b"\x0b" + message + b"\x1c\r")
            reply = b""
            while not reply.endswith(b"\x1c\r"):
                chunk = tls.recv(4096)
                assert chunk, "connection closed before the ACK"
                reply += chunk
        assert _ack_code(reply) == "AA"
        with MLLPClient("127.0.0.1", port) as plain:  # a plaintext sender gets no ACK: the handshake fails
            plain.socket.settimeout(10)
            try:
                answer = plain.send_message(message)
            except OSError:
                answer = b""
        assert b"MSA" not in answer
    finally:
        bridge.stop()
    stored = read_topic(kafka_bootstrap, unique_topic("in"), expected=1)
    assert [r.value for r in stored] == [message]


@pytest.mark.slow  # ~2 min: the producer gives up on the unacknowledged write only after its timeouts
def test_broker_down_answers_ae_not_aa(redis_url, unique_topic, tmp_path, handbuilt_model_repo):
    """A write the broker never acknowledged is answered AE (resend), never AA. Own broker: it is stopped."""
    from bench.devservers.kafka import start_kafka

    kafka = start_kafka(tmp_path / "kafka")
    bridge = None
    try:
        create_topic(kafka.bootstrap, unique_topic("in"), 1)
        # the unacknowledged write fails after the delivery timeout (default 120 s): its minimum keeps the test short
        env = engine_env(kafka.bootstrap, redis_url, unique_topic, handbuilt_model_repo, kafka_delivery_timeout_ms="31000")
        port = free_port()
        bridge = EngineProcess(tmp_path, env, ["--port", str(port)], name="ae", command="mllp")
        _wait_listening(port, bridge)
        with MLLPClient("127.0.0.1", port) as client:
            client.socket.settimeout(150)
            assert _ack_code(client.send_message(mdm("T02", "DOC-1", ["Asthma."]).bytes())) == "AA"
            kafka.stop()
            reply = client.send_message(mdm("T02", "DOC-2", ["Gout."]).bytes())
        assert _ack_code(reply) == "AE" and b"resend" in reply
    finally:
        if bridge is not None:
            bridge.stop()
        kafka.stop()
