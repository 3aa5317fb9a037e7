"""The `bpnn-ts` command."""

import argparse
import json
import sys
from pathlib import Path
from typing import List, Optional

from .config import ConfigError


def _cmd_export(args) -> int:
    from .config import load_model_config
    from .export import export
    config = load_model_config(args.config)
    model = config.build().eval()
    path = export(model, args.output, dtype=args.dtype, description=config.description,
                  provenance={"source": str(args.config), "seed": config.seed})
    print(f"wrote {path} ({', '.join(model.element_symbols)}; cutoff {model.cutoff():g} Å; "
          f"{args.dtype or config.dtype}; untrained, seed {config.seed})")
    return 0


def _cmd_inspect(args) -> int:
    from .export import inspect
    info = inspect(args.model)
    if args.json:
        print(json.dumps(info, indent=1))
        return 0
    meta, prov = info["metadata"], info["provenance"]
    print(f"model file      {args.model}")
    for key in ("format_version", "elements", "cutoff", "dtype", "length_unit", "energy_unit"):
        print(f"{key:15s} {meta.get(key)}")
    for key in ("package_version", "torch_version", "created", "description", "parameters_sha256", "source"):
        if key in prov:
            print(f"{key:15s} {prov[key]}")
    spec = prov.get("model", {})
    if spec:
        print(f"{'hidden_layers':15s} {spec.get('hidden_layers')}  activations {spec.get('activations')}")
        print(f"{'functions':15s} {len(spec.get('functions', []))} symmetry functions; scaling {spec.get('scaling')}")
    return 0


def _cmd_import_n2p2(args) -> int:
    from .export import export
    from .io.n2p2 import load_n2p2
    model = load_n2p2(args.directory, args.length_unit, args.energy_unit)
    path = export(model, args.output, dtype=args.dtype, description=f"imported from n2p2 {args.directory}",
                  provenance={"source": str(Path(args.directory).resolve()),
                              "n2p2_units": [args.length_unit, args.energy_unit]})
    print(f"wrote {path} ({', '.join(model.element_symbols)}; cutoff {model.cutoff():.6g} Å; eV and Å)")
    return 0


def _cmd_export_n2p2(args) -> int:
    from .export import load
    from .io.n2p2_writer import write_n2p2
    directory = write_n2p2(load(args.model), args.directory, args.length_unit, args.energy_unit)
    print(f"wrote input.nn, scaling.data and weights files to {directory} ({args.length_unit}, {args.energy_unit})")
    return 0


def _cmd_demo(args) -> int:
    from .demo import run_demo
    return run_demo(Path(args.output), steps=args.steps)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bpnn-ts", description="Behler-Parrinello potentials in one TorchScript file")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("export", help="build a seeded model from a YAML config and export it")
    p.add_argument("config", help="model YAML (elements, cutoff, symmetry_functions, ...)")
    p.add_argument("-o", "--output", required=True, help="model file to write (.pt)")
    p.add_argument("--dtype", choices=["float32", "float64"], default=None)
    p.set_defaults(run=_cmd_export)
    p = sub.add_parser("inspect", help="print a model file's metadata without running it")
    p.add_argument("model")
    p.add_argument("--json", action="store_true", help="print everything as JSON")
    p.set_defaults(run=_cmd_inspect)
    p = sub.add_parser("import-n2p2", help="convert an n2p2 potential directory to a model file")
    p.add_argument("directory", help="folder with input.nn, scaling.data, weights.ZZZ.data")
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--length-unit", choices=["angstrom", "bohr"], default="angstrom")
    p.add_argument("--energy-unit", choices=["eV", "hartree"], default="eV")
    p.add_argument("--dtype", choices=["float32", "float64"], default=None)
    p.set_defaults(run=_cmd_import_n2p2)
    p = sub.add_parser("export-n2p2", help="write a model file as n2p2 potential files (for pair_style hdnnp)")
    p.add_argument("model")
    p.add_argument("directory")
    p.add_argument("--length-unit", choices=["angstrom", "bohr"], default="angstrom")
    p.add_argument("--energy-unit", choices=["eV", "hartree"], default="eV")
    p.set_defaults(run=_cmd_export_n2p2)
    p = sub.add_parser("demo", help="build, export and run MD with a Cu model (no downloads)")
    p.add_argument("-o", "--output", default="bpnn_ts_demo", help="folder for the demo's files")
    p.add_argument("--steps", type=int, default=200)
    p.set_defaults(run=_cmd_demo)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except (ConfigError, ValueError, FileNotFoundError) as error:
        print(f"bpnn-ts {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
