"""YAML from files handed to a user (recipes, ``--config`` files, chip and energy target files), bounded.

An alias repeats what its anchor holds, so nested anchors multiply: a 337-byte "billion laughs"
document expands to 9^8 strings (gigabytes, minutes). `load_yaml` refuses a text over `MAX_TEXT`
before parsing, composes the document (aliases still shared, nothing expanded), sums what it would
expand to, and constructs it only under `MAX_EXPANDED`; every YAML reader goes through it
(`pipeline.config.read_yaml`, `hw_targets.energy.read_sourced_file`, the CLI's ``--model-arg``).
"""

from __future__ import annotations

from typing import Any

import yaml

from snnpipe.errors import SnnpipeError

#: Nodes plus characters of scalars a document may expand to, aliases expanded (a recipe: a few thousand).
MAX_EXPANDED = 1_000_000
#: Characters of text parsed at most: a recipe, ``--config`` or chip file takes a few KB (the largest
#: in recipes/ 1.9 KB; chip and target files are capped at the same 64 KiB, `energy.MAX_FILE_BYTES`),
#: and PyYAML composes a dense document at about 100 KB a second (a 50 MB one took 21 s to be refused).
#: Text spells out each node and character it holds (at most about 2 per character: ``{a,a,...}``),
#: so under this bound only aliases can take a document past `MAX_EXPANDED`.
MAX_TEXT = 1 << 16


def load_yaml(text: str, where: str, error: type[SnnpipeError] = SnnpipeError) -> Any:
    """The document in ``text`` (as ``yaml.safe_load``), once it is known to be small expanded.

    Args:
        where: what the text is, for messages ("recipe runs/x.yaml").

    Raises:
        yaml.YAMLError: not valid YAML.
        error: a text over `MAX_TEXT`, a document that would expand past `MAX_EXPANDED`, that refers
            to itself, or nests too deep.
    """
    if len(text) > MAX_TEXT:
        raise error(f"{where} is over {MAX_TEXT:,} characters, where a recipe or chip file takes a few "
                    "thousand: check that it is the right file")
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        size = _expanded_size(node, {}, set(), where, error)
        if size > MAX_EXPANDED:
            raise error(f"{where} expands to over {MAX_EXPANDED:,} values and characters (its aliases repeated); "
                        "write it out without nested anchors")
        return loader.construct_document(node)
    except RecursionError:
        raise error(f"{where} nests too deep to read; flatten it") from None
    finally:
        loader.dispose()


def _expanded_size(node: yaml.Node, sizes: dict[int, int], open_nodes: set[int], where: str,
                   error: type[SnnpipeError]) -> int:
    """1 per node plus the characters of its scalars, every alias counted where it is used; each
    node is summed once (``sizes``), so the count costs no more than the text."""
    key = id(node)
    if key in sizes:
        return sizes[key]
    if key in open_nodes:
        raise error(f"{where} refers to itself (an alias inside its own anchor); write it out")
    if isinstance(node, yaml.ScalarNode):
        size = 1 + len(node.value)
    else:
        open_nodes.add(key)
        children = node.value if isinstance(node, yaml.SequenceNode) else [item for pair in node.value for item in pair]
        size = 1
        for child in children:
            size += _expanded_size(child, sizes, open_nodes, where, error)
            if size > MAX_EXPANDED:  # no need to sum the rest
                break
        open_nodes.discard(key)
    sizes[key] = size
    return size
