#!/usr/bin/env python3
"""Write the initial seed corpora into tests/fuzz/corpus/<target>/ (run from the repository root).

    python3 fuzz/make_seeds.py path/to/cloudbase-ticket

Seeds: the fixture key files and variants of them (BOM, CRLF, `\\n` escapes, base64 as in the
environment variable, broken PEM, the openssl-made bad keys of tests/bad_inputs/keys/), tickets
from the CLI plus tickets signed here with `openssl dgst` over hand-made payloads (wrong env,
bad uid, expired, odd JSON), and uids. After fuzzing, `scripts/fuzz.sh merge TARGET` replaces
these by the minimised corpus, which keeps (most of) them under content-hash names.
"""
import base64
import json
import os
import subprocess
import sys
import tempfile

CLI = sys.argv[1]
NOW = 1758597487691
OUT = "tests/fuzz/corpus"


def write(target, name, data):
    if isinstance(data, str):
        data = data.encode()
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def fixture(rel):
    with open(rel) as f:
        return f.read()


main_text = fixture("fixtures/tcb_custom_login.json")
main = json.loads(main_text)
pem = main["private_key"]


def console(key, **extra):
    doc = {"private_key_id": main["private_key_id"], "private_key": key, "env_id": main["env_id"]}
    doc.update(extra)
    return json.dumps(doc, indent=2)


# ---- credentials_json -------------------------------------------------------------------
c = "credentials_json"
for rel in ["tcb_custom_login.json", "keys/rsa1024-pkcs1.json", "keys/rsa1024-pkcs8.json",
            "keys/rsa1024-no-env-id.json", "keys/rsa2048-pkcs8.json", "keys/rsa4096-pkcs1.json"]:
    write(c, "fixture-" + rel.replace("/", "-"), fixture("fixtures/" + rel))
write(c, "compact.json", json.dumps(main, separators=(",", ":")))
write(c, "bom.json", "\ufeff" + main_text)
write(c, "crlf-pem.json", console(pem.replace("\n", "\r\n")))
write(c, "escaped-newlines.json", console(pem.replace("\n", "\\n")))
write(c, "one-line-spaces.json", console(pem.replace("\n", " ")))
write(c, "env-id-null.json", console(pem, env_id=None))
write(c, "extra-fields.json", console(pem, type="custom", note="x\u00e9\u4e2d"))
write(c, "unicode-escapes.json",
      main_text.replace("-----BEGIN", "\\u002d\\u002d\\u002d\\u002d\\u002dBEGIN"))
b64 = base64.b64encode(main_text.encode()).decode()
write(c, "base64.txt", b64)
write(c, "base64-wrapped.txt", "\n".join(b64[i:i + 76] for i in range(0, len(b64), 76)))
write(c, "base64url-unpadded.txt", base64.urlsafe_b64encode(main_text.encode()).decode().rstrip("="))
write(c, "pem.txt", pem)
write(c, "pem-escaped.txt", pem.strip().replace("\n", "\\n"))
write(c, "pem-pkcs8.txt", json.loads(fixture("fixtures/keys/rsa1024-pkcs8.json"))["private_key"])
for name in sorted(os.listdir("tests/bad_inputs/keys")):
    key = fixture("tests/bad_inputs/keys/" + name)
    write(c, "bad-" + name.replace(".pem", ".json"), console(key))
write(c, "raw-encrypted-pkcs1.txt", fixture("tests/bad_inputs/keys/encrypted-pkcs1-proc-type.pem"))
write(c, "label-unterminated.json", console(pem.replace("PRIVATE KEY-----\n", "PRIVATE KEY\n", 1)))
write(c, "label-dashes-missing-one-line.json",
      console(pem.replace("PRIVATE KEY-----\n", "PRIVATE KEY ", 1).replace("\n", " ")))
write(c, "no-end.json", console(pem.split("-----END")[0]))
write(c, "end-mismatch.json", console(pem.replace("END RSA", "END")))
write(c, "body-bad-base64.json", console(pem.replace("MIIC", "MI*C", 1)))
write(c, "body-truncated.json", console(pem[:300] + "\n-----END RSA PRIVATE KEY-----\n"))
write(c, "label-unknown.json", console(pem.replace("RSA PRIVATE KEY", "CLOUDBASE KEY")))
write(c, "empty-object.json", "{}")
write(c, "array.json", "[]")
write(c, "fields-wrong-types.json", '{"private_key_id": 1, "private_key": true, "env_id": []}')
write(c, "trailing.json", main_text + "x")
write(c, "not-json.txt", "private_key_id=318ac0e6")

# ---- ticket_verify ----------------------------------------------------------------------
t = "ticket_verify"


def cli(*args, creds="fixtures/tcb_custom_login.json"):
    return subprocess.run([CLI, "issue", "--credentials", creds, *args], check=True,
                          capture_output=True, text=True).stdout.strip()


for i, (uid, extra) in enumerate([
    ("user_0001", []),
    ("[a]{b}(c)<d>", []),
    ("~=*:.,+#@-_" * 2, []),
    ("abcd", ["--refresh-ms", "0", "--expire-ms", "9007199254740991"]),
    ("user_0002", ["--now-ms", str(NOW - 500_000)]),
    ("user_0003", ["--now-ms", str(NOW + 599_000)]),
    ("user_0004", ["--now-ms", "0"]),
]):
    extra = extra if "--now-ms" in extra else extra + ["--now-ms", str(NOW)]
    write(t, f"cli-{i}.txt", cli("--uid", uid, *extra))
write(t, "cli-other-key.txt",
      cli("--uid", "user_0001", "--now-ms", str(NOW), creds="fixtures/keys/rsa1024-pkcs1.json"))
with tempfile.TemporaryDirectory() as tmp:
    other_env = os.path.join(tmp, "other-env.json")
    with open(other_env, "w") as f:
        f.write(console(pem, env_id="other-env-9z"))
    os.chmod(other_env, 0o600)
    write(t, "cli-other-env.txt", cli("--uid", "user_0001", "--now-ms", str(NOW), creds=other_env))
    key_file = os.path.join(tmp, "key.pem")
    with open(key_file, "w") as f:
        f.write(pem)

    def b64url(data):
        return base64.urlsafe_b64encode(data).decode().rstrip("=")

    def signed(header, payload, key_id=main["private_key_id"]):
        signing_input = b64url(header.encode()) + "." + b64url(payload.encode())
        sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", key_file],
                             input=signing_input.encode(), capture_output=True, check=True).stdout
        return f"{key_id}/@@/{signing_input}.{b64url(sig)}"

    header = '{"alg":"RS256","typ":"JWT"}'

    def claims(**over):
        doc = {"alg": "RS256", "env": main["env_id"], "iat": NOW, "exp": NOW + 600000,
               "uid": "user_0001", "refresh": 3600000, "expire": NOW + 604800000}
        doc.update(over)
        return json.dumps({k: v for k, v in doc.items() if v is not None}, separators=(",", ":"))

    write(t, "signed-bad-uid.txt", signed(header, claims(uid="a b")))
    write(t, "signed-expired.txt", signed(header, claims(iat=NOW - 700000, exp=NOW - 100000)))
    write(t, "signed-no-typ-extra-claims.txt",
          signed('{"alg":"RS256"}', claims()[:-1] + ',"extra":[1,{"a":null}]}'))
    write(t, "signed-missing-exp.txt", signed(header, claims(exp=None)))
    write(t, "signed-alg-hs256.txt", signed('{"alg":"HS256","typ":"JWT"}', claims()))
    write(t, "signed-float-times.txt", signed(header, claims().replace(str(NOW), str(NOW) + ".5", 1)))
    write(t, "signed-unicode.txt", signed(header, claims(uid="\u7528\u6237\u0001")))
good = cli("--uid", "user_0001", "--now-ms", str(NOW))
key_id, jwt = good.split("/@@/")
h, p, s = jwt.split(".")
write(t, "whitespace.txt", "  \n" + good + "\r\n")
write(t, "no-separator.txt", jwt)
write(t, "empty-key-id.txt", "/@@/" + jwt)
write(t, "two-parts.txt", key_id + "/@@/" + h + "." + p)
write(t, "four-parts.txt", good + ".e30")
write(t, "padded-signature.txt", good + "==")
write(t, "std-base64-signature.txt", key_id + "/@@/" + h + "." + p + "." + s.replace("-", "+").replace("_", "/"))
write(t, "header-not-json.txt", key_id + "/@@/" + "bm90IGpzb24" + "." + p + "." + s)
write(t, "signature-cut.txt", good[:-10])
write(t, "empty.txt", "")

# ---- uid --------------------------------------------------------------------------------
u = "uid"
for i, uid in enumerate([
    b"user_0001", b"abc", b"abcd", b"a" * 32, b"a" * 33, b"_-#@~=*(){}[]:.,<>+", b"[ab]",
    b"abcd\n", b"ab\ncd", b"user 0001", "\u7528\u62370001".encode(), "\uff55\uff53\uff45\uff52".encode(),
    b"", b"\xff\xfeuser", b"user\x00001", "e\u0301xyz".encode(), b"$user", b"user/0001",
]):
    write(u, f"seed-{i:02}", uid)

for target in (c, t, u):
    print(target, len(os.listdir(os.path.join(OUT, target))))
