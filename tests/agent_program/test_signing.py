from deplite_agent.signing import compute_v1, parse_signature_header, signature_header, verify

SECRET = "ags_test_secret"
TS = 1700000000
NONCE = "0123456789abcdef0123456789abcdef"


def test_signature_matches_known_vector_for_post_with_query():
    # Computed independently: HMAC-SHA256(secret, "v1\n{ts}\n{nonce}\nPOST\n{path?query}\n{sha256(body)}").
    v1 = compute_v1(
        secret=SECRET, ts=TS, nonce=NONCE, method="POST", path="/api/agent/jobs/claim?wait=30", body=b'{"events":[]}'
    )
    assert v1 == "bd6ae3483701784c3402fac95e90690f3eeee6c61cfe0de877668fd20905c205"


def test_signature_matches_known_vector_for_get_with_empty_body():
    v1 = compute_v1(secret=SECRET, ts=TS, nonce=NONCE, method="get", path="/api/agent/files/abc/download-url", body=b"")
    assert v1 == "0fc070f82846efdce0e7f71aee52f5a95a716718b281d9171c3b248a202152df"


def test_header_carries_agent_ts_nonce_and_mac():
    header = signature_header(agent_id="agent-1", secret=SECRET, method="POST", path="/x", body=b"{}")
    parts = parse_signature_header(header)
    assert parts["agent"] == "agent-1"
    assert len(parts["nonce"]) == 32 and int(parts["nonce"], 16) >= 0
    assert abs(int(parts["ts"]) - __import__("time").time()) < 5
    assert SECRET not in header


def test_verify_rejects_any_changed_byte():
    header = signature_header(agent_id="a", secret=SECRET, method="POST", path="/p?wait=1", body=b'{"a":1}')
    assert verify(secret=SECRET, header=header, method="POST", path="/p?wait=1", body=b'{"a":1}')
    assert not verify(secret=SECRET, header=header, method="POST", path="/p?wait=2", body=b'{"a":1}')
    assert not verify(secret=SECRET, header=header, method="POST", path="/p?wait=1", body=b'{"a":2}')
    assert not verify(secret=SECRET, header=header, method="PUT", path="/p?wait=1", body=b'{"a":1}')
    assert not verify(secret="other", header=header, method="POST", path="/p?wait=1", body=b'{"a":1}')
    assert not verify(secret=SECRET, header="agent=a,ts=1", method="POST", path="/p?wait=1", body=b'{"a":1}')
