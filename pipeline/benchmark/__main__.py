"""``python -m pipeline.benchmark SUBCOMMAND [args]``: dispatches to ``pipeline.benchmark.<SUBCOMMAND>.main(argv)``.

A subcommand's ``main`` returns an exit status (int) or its results (anything else, meaning success).

Subcommand modules are imported only when asked for, so one subcommand's heavy imports (or its absence in a
checkout) never affects another.
"""

from __future__ import annotations

import importlib
import sys

SUBCOMMANDS = {
    "train": ("pipeline.benchmark.train", "training steps on the real data pipeline: clips/s, data wait, memory, MFU"),
    "data": ("pipeline.benchmark.data", "clip decoding and loading alone"),
    "corpus": ("pipeline.benchmark.corpus", "write a UCF101-shaped corpus of realistic synthetic videos"),
    "revisions": ("pipeline.benchmark.revisions", "this tree's data path against an older revision's, same corpus"),
    "gpu": ("pipeline.benchmark.gpu", "the one GPU check: training, evaluation, pipeline() vs the model's own speed"),
    "ablation": ("pipeline.benchmark.ablation", "fine-tuning tricks on/off on the demo over seeds: test top-1"),
}


def usage() -> str:
    lines = ["usage: python -m pipeline.benchmark {%s} [options]" % "|".join(SUBCOMMANDS), "", "subcommands:"]
    lines += [f"  {name:<8} {help_text}" for name, (_, help_text) in SUBCOMMANDS.items()]
    lines += ["", "python -m pipeline.benchmark SUBCOMMAND --help shows a subcommand's options."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    if name not in SUBCOMMANDS:
        print(f"pipeline.benchmark: unknown subcommand '{name}'\n\n{usage()}", file=sys.stderr)
        return 2
    module_name = SUBCOMMANDS[name][0]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        if err.name != module_name:  # the subcommand exists but one of ITS imports is missing: show that
            raise
        print(
            f"pipeline.benchmark: subcommand '{name}' is not available: module {module_name} "
            f"({module_name.replace('.', '/')}.py) is missing from this installation",
            file=sys.stderr,
        )
        return 2
    status = module.main(rest)
    return status if isinstance(status, int) else 0


if __name__ == "__main__":
    sys.exit(main())
