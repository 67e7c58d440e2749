"""Generate the Python wire code for proto/shoprank/v1 with the pinned grpcio-tools.

    python proto/generate.py           # write shoprank/v1/*_pb2*.py(i)
    python proto/generate.py --check   # exit 1 if the checked-in code drifted from the .proto

Generated files are never edited by hand; a test runs --check.
"""

from __future__ import annotations

import argparse
import filecmp
import sys
import tempfile
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTO_DIR = ROOT / "proto"
PACKAGE = Path("shoprank") / "v1"
GENERATED_SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py", "_pb2_grpc.pyi")


def generate(out_dir: Path) -> list[Path]:
    """Run protoc on every .proto under proto/shoprank/v1 into out_dir; return the generated files."""
    protos = sorted(str(p.relative_to(PROTO_DIR)) for p in (PROTO_DIR / PACKAGE).glob("*.proto"))
    # mypy-protobuf's plugins sit beside this interpreter; name them so PATH does not matter.
    scripts = Path(sys.executable).parent
    args = [
        "protoc",
        f"--plugin=protoc-gen-mypy={scripts / 'protoc-gen-mypy'}",
        f"--plugin=protoc-gen-mypy_grpc={scripts / 'protoc-gen-mypy_grpc'}",
        f"-I{PROTO_DIR}",
        f"-I{Path(protoc.__file__).parent / '_proto'}",
        f"--python_out={out_dir}",
        f"--mypy_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        f"--mypy_grpc_out={out_dir}",
        *protos,
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed; see the messages above")
    return sorted(p for p in (out_dir / PACKAGE).iterdir() if p.name.endswith(GENERATED_SUFFIXES))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        fresh = generate(Path(tmp))
        target = ROOT / PACKAGE
        if args.check:
            drifted = [
                f.name
                for f in fresh
                if not (target / f.name).exists() or not filecmp.cmp(f, target / f.name, shallow=False)
            ]
            if drifted:
                print(f"generated code is stale: {', '.join(drifted)}; run `python proto/generate.py`")
                return 1
            return 0
        target.mkdir(parents=True, exist_ok=True)
        for f in fresh:
            (target / f.name).write_bytes(f.read_bytes())
    return 0


if __name__ == "__main__":
    sys.exit(main())
