#!/usr/bin/env python3
"""Computes the MSE handshake vectors in vectors.txt from the protocol's formulas, with
Python's own integers, hashlib and a textbook RC4, independently of the Rust code that the
tests check against them. Run: python3 vectors.py > vectors.txt
"""
import hashlib

P = int(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A"
    "08798E3404DDEF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9"
    "A63A36210000000000090563",
    16,
)


def sha1(*parts):
    return hashlib.sha1(b"".join(parts)).digest()


class RC4:
    def __init__(self, key):
        s = list(range(256))
        j = 0
        for i in range(256):
            j = (j + s[i] + key[i % len(key)]) % 256
            s[i], s[j] = s[j], s[i]
        self.s, self.i, self.j = s, 0, 0
        self.apply(bytes(1024))  # MSE discards the first 1024 bytes of keystream

    def apply(self, data):
        out = bytearray()
        s = self.s
        for b in data:
            self.i = (self.i + 1) % 256
            self.j = (self.j + s[self.i]) % 256
            s[self.i], s[self.j] = s[self.j], s[self.i]
            out.append(b ^ s[(s[self.i] + s[self.j]) % 256])
        return bytes(out)


def be(n, size):
    return n.to_bytes(size, "big")


def case(name, xa, xb, info_hash, ia, provide, select, pad_a, payload_a, payload_b):
    ya = be(pow(2, int.from_bytes(xa, "big"), P), 96)
    yb = be(pow(2, int.from_bytes(xb, "big"), P), 96)
    s = be(pow(int.from_bytes(yb, "big"), int.from_bytes(xa, "big"), P), 96)
    assert s == be(pow(int.from_bytes(ya, "big"), int.from_bytes(xb, "big"), P), 96)
    a_send = RC4(sha1(b"keyA", s, info_hash))
    b_send = RC4(sha1(b"keyB", s, info_hash))
    req2 = sha1(b"req2", info_hash)
    req3 = sha1(b"req3", s)
    step3 = sha1(b"req1", s) + bytes(x ^ y for x, y in zip(req2, req3))
    step3 += a_send.apply(bytes(8) + be(provide, 4) + be(0, 2) + be(len(ia), 2) + ia)
    step4 = b_send.apply(bytes(8) + be(select, 4) + be(0, 2))
    rc4 = select == 2
    after_a = a_send.apply(payload_a) if rc4 else payload_a
    after_b = b_send.apply(payload_b) if rc4 else payload_b
    rows = [
        ("xa", xa), ("xb", xb), ("info_hash", info_hash), ("ia", ia),
        ("provide", be(provide, 4)), ("select", be(select, 4)),
        ("ya", ya), ("yb", yb), ("secret", s), ("pad_a", pad_a),
        ("step3", step3), ("step4", step4),
        ("payload_a", payload_a), ("wire_a", after_a),
        ("payload_b", payload_b), ("wire_b", after_b),
    ]
    for key, value in rows:
        print("%s %s %s" % (name, key, value.hex() or "-"))


handshake = b"\x13BitTorrent protocol" + bytes(8) + bytes(range(20)) + b"-Sx0010-abcdefghijkl"
case(
    "rc4",
    xa=bytes(range(1, 21)),
    xb=bytes(range(101, 121)),
    info_hash=bytes.fromhex("0123456789abcdef0123456789abcdef01234567"),
    ia=handshake,
    provide=3,
    select=2,
    pad_a=bytes(range(37)),
    payload_a=b"\x00\x00\x00\x01\x02after the handshake, from A",
    payload_b=b"\x00\x00\x00\x05\x05\xff" + b"from B",
)
case(
    "plain",
    xa=bytes([0xfe] * 20),
    xb=bytes([0x11] * 20),
    info_hash=bytes([0xaa] * 20),
    ia=b"",
    provide=1,
    select=1,
    pad_a=b"",
    payload_a=b"plain from A",
    payload_b=b"plain from B",
)
