"""The `bpnn-ts` command."""

import argparse
import json
import sys
from pathlib import Path
from typing import List, Optional

from .errors import ConfigError
from .many_structures import DEFAULT_BATCH_ATOMS
from .precision import PRECISIONS
from .threads import check_threads


def _cmd_export(args) -> int:
    from .config import load_model_config
    from .export import export, is_model_file
    from .training.checkpoint import is_checkpoint
    if is_model_file(args.config):
        return _reexport(args)
    if is_checkpoint(args.config):
        from .training import model_from_checkpoint
        model = model_from_checkpoint(args.config)
        path = export(model, args.output, dtype=args.dtype, description="trained by bpnn-ts train",
                      provenance={"source": str(Path(args.config).resolve())}, native_kernels=KERNELS[args.kernels],
                  format=args.model_format)
        print(f"wrote {path} ({', '.join(model.element_symbols)}; cutoff {model.cutoff():g} Å; "
              f"{args.dtype or model.dtype_name()}; trained, from {args.config})")
        return 0
    config = load_model_config(args.config)
    model = config.build().eval()
    path = export(model, args.output, dtype=args.dtype, description=config.description,
                  provenance={"source": str(args.config), "seed": config.seed}, native_kernels=KERNELS[args.kernels],
                  format=args.model_format)
    print(f"wrote {path} ({', '.join(model.element_symbols)}; cutoff {model.cutoff():g} Å; "
          f"{args.dtype or config.dtype}; untrained, seed {config.seed})")
    return 0


def _reexport(args) -> int:
    """`bpnn-ts export old.pt -o new.pt`: a model file (any format this version reads) rewritten
    in the current format, with its precision and description unless told otherwise."""
    from .export import export, inspect, load
    from .formats.eager import eager_copy
    info = inspect(args.config)
    model = eager_copy(load(args.config, verify=args.verify))
    dtype = args.dtype or info["metadata"].get("dtype", "float64")
    description = info["provenance"].get("description", "")
    path = export(model, args.output, dtype=dtype, description=description,
                  provenance={"source": str(Path(args.config).resolve()),
                              "source_format_version": info["metadata"].get("format_version")},
                  native_kernels=KERNELS[args.kernels],
                  format=args.model_format)
    print(f"wrote {path} ({', '.join(model.element_symbols)}; cutoff {model.cutoff():g} Å; {dtype}; "
          f"re-exported from {args.config}, format {info['metadata'].get('format_version')})")
    return 0


def _cmd_inspect(args) -> int:
    from .export import inspect
    info = inspect(args.model)
    if args.json:
        print(json.dumps(info, indent=1))
        return 0
    meta, prov = info["metadata"], info["provenance"]
    print(f"model file      {args.model}")
    for key in ("format_version", "elements", "cutoff", "dtype", "length_unit", "energy_unit", "committee_size"):
        print(f"{key:15s} {meta.get(key, 1 if key == 'committee_size' else None)}")
    for key in ("package_version", "torch_version", "created", "description", "parameters_sha256", "source"):
        if key in prov:
            print(f"{key:15s} {prov[key]}")
    print(f"{'native_kernels':15s} {meta.get('native_kernels', False)}")
    spec = prov.get("model", {})
    if spec:
        print(f"{'hidden_layers':15s} {spec.get('hidden_layers')}  activations {spec.get('activations')}")
        print(f"{'functions':15s} {len(spec.get('functions', []))} symmetry functions; scaling {spec.get('scaling')}")
    if args.verify:  # loads the model: runs code from the file
        from .export import load
        model = load(args.model)
        known = bool(model.training_range_known())
        print(f"{'verified':15s} loads; parameters match parameters_sha256; training range known: {known}")
    return 0


def _cmd_committee(args) -> int:
    from .committee_merge import build_committee
    from .export import export, load
    from .training import model_from_checkpoint
    from .training.checkpoint import is_checkpoint
    models = [model_from_checkpoint(path) if is_checkpoint(path) else load(path, verify=args.verify)
              for path in args.members]
    committee = build_committee(models)
    path = export(committee, args.output, dtype=args.dtype, description=f"committee of {len(args.members)} models",
                  provenance={"members": [str(Path(m).resolve()) for m in args.members]},
                  native_kernels=KERNELS[args.kernels],
                  format=args.model_format)
    print(f"wrote {path} (committee of {committee.committee_size()} networks per element; "
          f"{', '.join(committee.element_symbols)}; training range known: {committee.training_range_known()})")
    return 0


def _cmd_import_n2p2(args) -> int:
    from .export import export
    from .io.n2p2 import load_n2p2
    model = load_n2p2(args.directory, args.length_unit, args.energy_unit, check_units=not args.no_unit_check)
    path = export(model, args.output, dtype=args.dtype, description=f"imported from n2p2 {args.directory}",
                  provenance={"source": str(Path(args.directory).resolve()),
                              "n2p2_units": [args.length_unit, args.energy_unit]}, native_kernels=KERNELS[args.kernels],
                  format=args.model_format)
    print(f"wrote {path} ({', '.join(model.element_symbols)}; cutoff {model.cutoff():.6g} Å; eV and Å)")
    return 0


def _export_n2p2_folder(args) -> str:
    """`-o DIR`, or the positional DIR of bpnn_ts 0.2 (deprecated: a message on stderr)."""
    if args.directory is not None and args.output is not None:
        raise ValueError(f"give the output folder once, as `-o DIR`; got both {args.directory!r} and "
                         f"-o {args.output!r}")
    if args.directory is not None:
        print(f"bpnn-ts export-n2p2: deprecated: the positional output folder will be removed in the next "
              f"release; use `bpnn-ts export-n2p2 {args.model} -o {args.directory}`", file=sys.stderr)
        return args.directory
    if args.output is None:
        raise ValueError("the output folder is required: `bpnn-ts export-n2p2 MODEL -o DIR`")
    return args.output


def _cmd_export_n2p2(args) -> int:
    from .export import load
    from .io.n2p2_writer import write_n2p2
    folder = _export_n2p2_folder(args)
    directory = write_n2p2(load(args.model, verify=args.verify), folder, args.length_unit, args.energy_unit)
    print(f"wrote input.nn, scaling.data and weights files to {directory} ({args.length_unit}, {args.energy_unit})")
    return 0


def _cmd_train(args) -> int:
    from .training import Trainer, load_train_config
    from .training.output import OutputExistsError
    config = load_train_config(args.config)
    try:
        if args.committee:
            from .training import train_committee
            train_committee(config, args.committee, resume=args.resume, overwrite=args.overwrite,
                            workers=args.workers)
            return 0
        results = Trainer(config, resume=args.resume, overwrite=args.overwrite).run()
    except KeyboardInterrupt:
        return 130
    except OutputExistsError as error:
        print(f"bpnn-ts train: error: {error}", file=sys.stderr)
        return 2
    finally:
        from .training.distributed import shutdown
        shutdown()
    print(f"finished; files in {config.output}")
    for name in ("train", "validation", "test"):
        if f"{name}_energy_rmse_mev_atom" in results:
            print(f"{name:10s} energy RMSE {results[f'{name}_energy_rmse_mev_atom']:8.3f} meV/atom   "
                  f"force RMSE {results.get(f'{name}_force_rmse', float('nan')):.4f} eV/Å")
    return 0


def _cmd_learn(args) -> int:
    from .learning import ActiveLearning, load_learn_config
    config = load_learn_config(args.config)
    try:
        ActiveLearning(config, resume=args.resume).run()
    except KeyboardInterrupt:
        return 130
    except FileExistsError as error:
        print(f"bpnn-ts learn: error: {error}", file=sys.stderr)
        return 2
    print(f"finished; files in {config.output} (learning.csv: a row per round)")
    return 0


def _cmd_eval(args) -> int:
    from .training.metrics import described, evaluate_model_file
    metrics = evaluate_model_file(args.model, args.data, args.format, args.length_unit, args.energy_unit,
                                  args.batch_atoms, verify=args.verify)
    if args.json:
        print(json.dumps(metrics, indent=1))
        return 0
    print(f"{metrics['structures']} structures, {metrics['atoms']} atoms")
    for key, value in metrics.items():
        if key not in ("structures", "atoms"):
            print(described(key, value))
    return 0


def _cmd_demo(args) -> int:
    from .demo import run_demo
    return run_demo(Path(args.output), steps=args.steps, epochs=args.epochs, threads=args.threads)


KERNELS = {"auto": None, "native": True, "torch": False}  # --kernels -> export(native_kernels=...)


def _add_model_file_options(p: argparse.ArgumentParser) -> None:
    """Options of every command that writes a model file."""
    p.add_argument("--dtype", choices=list(PRECISIONS), default=None,
                   help="float64, float32, or mixed (float32 descriptors and nets, float64 sums)")
    p.add_argument("--kernels", choices=sorted(KERNELS), default="auto",
                   help="fused C++ descriptor kernels in the file (auto: where they build here; torch: portable)")
    p.add_argument("--format", dest="model_format", choices=["torchscript", "pt2", "metatomic"], default=None,
                   help="model-file format: torchscript (default), pt2 (torch.export + AOTInductor, compiled for "
                        "this machine's CPU; a minute or more) or metatomic (for ASE, i-PI, LAMMPS-metatomic and "
                        "other metatomic engines; needs metatomic-torch); default: pt2 if the output ends in .pt2")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bpnn-ts", description="Behler-Parrinello potentials in one TorchScript file")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("export", help="export a training checkpoint, a seeded model from a YAML config, or "
                                      "re-export a model file (older formats included) in the current format")
    p.add_argument("config", help="checkpoint (.ckpt), model YAML (elements, cutoff, symmetry_functions, ...) "
                                  "or model file (.pt)")
    p.add_argument("-o", "--output", required=True, help="model file to write (.pt)")
    _add_no_verify_option(p)
    _add_model_file_options(p)
    p.set_defaults(run=_cmd_export)
    p = sub.add_parser("inspect", help="print a model file's metadata without running it")
    p.add_argument("model")
    p.add_argument("--json", action="store_true", help="print everything as JSON")
    p.add_argument("--verify", action="store_true",
                   help="also load the model (runs code from the file: trusted files only) and check its parameter hash")
    p.set_defaults(run=_cmd_inspect)
    p = sub.add_parser("committee", help="combine models (same symmetry functions and layers) into one committee file")
    p.add_argument("members", nargs="+", help="model files (.pt) or training checkpoints (.ckpt); 2 or more networks")
    p.add_argument("-o", "--output", required=True, help="model file to write (.pt)")
    _add_no_verify_option(p)
    _add_model_file_options(p)
    p.set_defaults(run=_cmd_committee)
    p = sub.add_parser("import-n2p2", help="convert an n2p2 potential directory to a model file")
    p.add_argument("directory", help="folder with input.nn, scaling.data, weights.ZZZ.data")
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--length-unit", choices=["angstrom", "bohr"], default="angstrom",
                   help="length unit of the n2p2 files (default: angstrom; n2p2's examples use bohr)")
    p.add_argument("--energy-unit", choices=["eV", "hartree"], default="eV",
                   help="energy unit of the n2p2 files (default: eV; n2p2's examples use hartree)")
    p.add_argument("--no-unit-check", action="store_true",
                   help="skip the checks that the files do not contradict the units (unit comments in input.nn, "
                        "cutoffs of 2-20 Å, atoms of input.data at least 0.6 Å apart)")
    _add_model_file_options(p)
    p.set_defaults(run=_cmd_import_n2p2)
    p = sub.add_parser("export-n2p2", help="write a model file as n2p2 potential files (for pair_style hdnnp)")
    p.add_argument("model", help="model file (.pt)")
    p.add_argument("directory", nargs="?", default=None, help=argparse.SUPPRESS)  # 0.2's positional DIR, deprecated
    p.add_argument("-o", "--output", default=None, metavar="DIR",
                   help="folder to write input.nn, scaling.data and weights.ZZZ.data to (required)")
    p.add_argument("--length-unit", choices=["angstrom", "bohr"], default="angstrom")
    p.add_argument("--energy-unit", choices=["eV", "hartree"], default="eV")
    _add_no_verify_option(p)
    p.set_defaults(run=_cmd_export_n2p2)
    p = sub.add_parser("train", help="fit a model to a data set (YAML training config)")
    p.add_argument("config", help="training YAML (model, data, loss, training, output)")
    again = p.add_mutually_exclusive_group()
    again.add_argument("--resume", action="store_true", help="continue from output/checkpoint.ckpt")
    again.add_argument("--overwrite", action="store_true",
                       help="replace the run already in the output folder (without it, such a folder is refused)")
    p.add_argument("--committee", type=int, default=0, metavar="K",
                   help="train K members (model seeds seed..seed+K-1) into output/member_k, then output/committee.pt")
    p.add_argument("--workers", type=int, default=1, metavar="N",
                   help="with --committee: train N members at a time, each in its own process with one thread "
                        "(logs in output/member_k/train.log)")
    _add_threads_option(p)
    p.set_defaults(run=_cmd_train)
    p = sub.add_parser("learn", help="active learning: explore with MD, label what the committee does not know "
                                     "(any ASE calculator), retrain, until the committee knows what MD visits")
    p.add_argument("config", help="learning YAML (labeller, start, train, explore, select, stop, output; "
                                  "docs/active-learning.md)")
    p.add_argument("--resume", action="store_true", help="continue the run in the config's output folder")
    p.set_defaults(run=_cmd_learn)
    from .io.datasets import FORMATS
    p = sub.add_parser("eval", help="energy and force errors of a model file on a data set")
    p.add_argument("model")
    p.add_argument("data", nargs="+", help="data files (extxyz, ASE db/traj, n2p2 input.data or *.data)")
    p.add_argument("--format", choices=list(FORMATS), default=None,
                   help="the files' format (default: from the names; input.data and *.data are n2p2)")
    p.add_argument("--length-unit", choices=["angstrom", "bohr"], default="angstrom")
    p.add_argument("--energy-unit", choices=["eV", "hartree"], default="eV")
    p.add_argument("--batch-atoms", type=int, default=DEFAULT_BATCH_ATOMS, metavar="N",
                   help=f"most atoms per batched model call (default {DEFAULT_BATCH_ATOMS}; 0: one call per "
                        "structure; files without forward_batch, and .pt2 files, are called per structure)")
    _add_no_verify_option(p)
    p.add_argument("--json", action="store_true")
    _add_threads_option(p)
    p.set_defaults(run=_cmd_eval)
    p = sub.add_parser("demo", help="EMT Cu data -> train -> export -> test and NVE MD (no downloads)")
    p.add_argument("-o", "--output", default="bpnn_ts_demo", help="folder for the demo's files")
    p.add_argument("--steps", type=int, default=200, help="NVE MD steps")
    p.add_argument("--epochs", type=int, default=0, help="training epochs (0: the demo's default)")
    _add_threads_option(p)
    p.set_defaults(run=_cmd_demo)
    return parser


def _add_no_verify_option(p: argparse.ArgumentParser) -> None:
    """For commands that load model files: skip the parameter-hash check."""
    p.add_argument("--no-verify", dest="verify", action="store_false",
                   help="skip the check that a model file's parameters match the hash recorded at export")


def _add_threads_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--threads", type=int, default=1, metavar="N",
                   help="intra-op threads (default 1: never slow when other jobs share the cores; more where the "
                        "cores are yours, see docs/performance.md)")


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        threads = check_threads(getattr(args, "threads", None))
        if threads is not None:
            import torch
            torch.set_num_threads(threads)
        return args.run(args)
    except (ConfigError, ValueError, FileNotFoundError) as error:
        print(f"bpnn-ts {args.command}: error: {_in_cli_terms(error, args)}", file=sys.stderr)
        return 2


def _in_cli_terms(error: Exception, args) -> str:
    """The message of `error`, with a parameter-hash error's way around the check given as this
    command's `--no-verify` (none where the command has no such flag)."""
    from .formats.records import ParameterHashError
    if not isinstance(error, ParameterHashError):
        return str(error)
    has_flag = hasattr(args, "verify") and args.command != "inspect"
    return error.problem + ("; --no-verify skips this check (trusted files only)" if has_flag else "")


if __name__ == "__main__":
    sys.exit(main())
