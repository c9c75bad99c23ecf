#!/usr/bin/python3
"""An independent peer for skiff's signatures: cosign's formats implemented with Python's
`cryptography` (ECDSA P-256, PKIX/PKCS#8) and PyNaCl (secretbox), scrypt from hashlib. No code is
shared with skiff, so a test that passes both ways shows the formats agree, not merely that skiff
agrees with itself.

  verify PUB PAYLOAD SIG_B64       exit 0 if SIG is PUB's ECDSA-SHA256 signature of PAYLOAD's bytes
  key-public KEY PASSWORD          decrypt a cosign.key and print its public key (PEM)
  generate DIR PASSWORD            write DIR/py.key (encrypted as cosign does) and DIR/py.pub
  sign KEY PASSWORD PAYLOAD        print the base64 DER signature of PAYLOAD's bytes
  payload REF DIGEST               print a cosign-style payload (optional: null)
"""
import base64
import hashlib
import json
import os
import sys

import nacl.secret
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

LABEL = "ENCRYPTED SIGSTORE PRIVATE KEY"


def pem_body(text, label):
    lines = text.strip().splitlines()
    if lines[0] != f"-----BEGIN {label}-----" or lines[-1] != f"-----END {label}-----":
        raise SystemExit(f"not a {label} PEM")
    return base64.b64decode("".join(lines[1:-1]))


def decrypt(path, password):
    doc = json.loads(pem_body(open(path).read(), LABEL))
    kdf, cipher = doc["kdf"], doc["cipher"]
    assert kdf["name"] == "scrypt" and cipher["name"] == "nacl/secretbox", doc
    p = kdf["params"]
    key = hashlib.scrypt(password.encode(), salt=base64.b64decode(kdf["salt"]),
                         n=p["N"], r=p["r"], p=p["p"], maxmem=64 << 20, dklen=32)
    der = nacl.secret.SecretBox(key).decrypt(base64.b64decode(doc["ciphertext"]),
                                             base64.b64decode(cipher["nonce"]))
    return serialization.load_der_private_key(der, password=None)


def public_pem(key):
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def main(cmd, *args):
    if cmd == "verify":
        pub = serialization.load_pem_public_key(open(args[0], "rb").read())
        sig = base64.b64decode(args[2])
        pub.verify(sig, open(args[1], "rb").read(), ec.ECDSA(hashes.SHA256()))  # raises if bad
        print("verified")
    elif cmd == "key-public":
        print(public_pem(decrypt(args[0], args[1])), end="")
    elif cmd == "generate":
        d, password = args
        key = ec.generate_private_key(ec.SECP256R1())
        der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
        salt, nonce = os.urandom(32), os.urandom(24)
        k = hashlib.scrypt(password.encode(), salt=salt, n=32768, r=8, p=1, maxmem=64 << 20, dklen=32)
        ct = nacl.secret.SecretBox(k).encrypt(der, nonce).ciphertext
        b64 = lambda b: base64.b64encode(b).decode()
        doc = {"kdf": {"name": "scrypt", "params": {"N": 32768, "r": 8, "p": 1}, "salt": b64(salt)},
               "cipher": {"name": "nacl/secretbox", "nonce": b64(nonce)}, "ciphertext": b64(ct)}
        body = base64.b64encode(json.dumps(doc).encode()).decode()
        lines = [body[i:i + 64] for i in range(0, len(body), 64)]
        with open(os.path.join(d, "py.key"), "w", opener=lambda p, f: os.open(p, f, 0o600)) as f:
            f.write("\n".join([f"-----BEGIN {LABEL}-----", *lines, f"-----END {LABEL}-----", ""]))
        with open(os.path.join(d, "py.pub"), "w") as f:
            f.write(public_pem(key))
    elif cmd == "sign":
        key = decrypt(args[0], args[1])
        sig = key.sign(open(args[2], "rb").read(), ec.ECDSA(hashes.SHA256()))
        print(base64.b64encode(sig).decode())
    elif cmd == "payload":
        print(json.dumps({"critical": {"identity": {"docker-reference": args[0]},
                                       "image": {"docker-manifest-digest": args[1]},
                                       "type": "cosign container image signature"},
                          "optional": None}, separators=(",", ":")), end="")
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(*sys.argv[1:])
