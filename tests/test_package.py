"""The package's shape: imports point one way, without cycles; the public API resolves."""

import ast
import re
import pathlib

import pytest

import exchange_st

PACKAGE = pathlib.Path(exchange_st.__file__).parent
# A subpackage may import its own modules and those of lower layers, never a
# higher layer or a peer (README, "Layout").
LAYERS = {
    "console": 0,
    "nn": 1,
    "data": 1,
    "baselines": 2,
    "saving": 3,
    "inference": 4,
    "evaluation": 4,
    # The evaluation curve reports learning_report's scores while training.
    "training": 5,
}


def _modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        yield ".".join(parts), path


def _imports(path):
    """`(imported module, at module level)` for every import of the package in `path`."""
    tree = ast.parse(path.read_text())
    top_level = {id(node) for node in tree.body}
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.ImportFrom)
            and node.module
            and node.module.startswith("exchange_st")
        ):
            for alias in node.names:
                candidate = f"{node.module}.{alias.name}"
                is_module = (PACKAGE.parent / (candidate.replace(".", "/") + ".py")).exists()
                yield (candidate if is_module else node.module), id(node) in top_level
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("exchange_st"):
                    yield alias.name, id(node) in top_level


def _role(module):
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def test_imports_point_down_the_layers():
    wrong = []
    for module, path in _modules():
        role = _role(module)
        if role is None:  # exchange_st/__init__: the lazy public API.
            continue
        assert role in LAYERS, f"{module}: add its subpackage to LAYERS and README's Layout"
        for target, _ in _imports(path):
            other = _role(target)
            if other is None or other == role:
                continue
            if LAYERS[other] >= LAYERS[role]:
                wrong.append(f"{module} imports {target}")
    assert not wrong, "imports that point up or sideways:\n" + "\n".join(wrong)


def test_no_import_cycles():
    graph = {
        module: {t for t, top in _imports(path) if top and t != module}
        for module, path in _modules()
    }
    state = {}

    def visit(node, stack):
        state[node] = "open"
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                cycle = stack[stack.index(nxt) :] + [nxt]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])


def test_no_names_with_two_addresses():
    offenders = [
        str(path.relative_to(PACKAGE.parent))
        for _, path in _modules()
        if "kept importable" in path.read_text() or "re-exported" in path.read_text()
    ]
    assert not offenders


@pytest.mark.parametrize("name", exchange_st.__all__)
def test_public_api_resolves(name):
    assert getattr(exchange_st, name) is not None
    with pytest.raises(AttributeError, match="no attribute"):
        exchange_st.NoSuchThing  # noqa: B018


ROOT = PACKAGE.parent
CITATION = re.compile(r'(docs/[\w/]+\.md)(?:,\s*(?:#\s*)?"([^"]+)")?')


def _headings(path):
    return [
        line.lstrip("#").strip() for line in path.read_text().splitlines() if line.startswith("#")
    ]


def test_every_cited_design_note_exists():
    cited = 0
    missing = []
    for path in [*ROOT.glob("*.py"), *ROOT.glob("*.md"), *ROOT.glob("configs/*.cfg")] + [
        p
        for folder in ("exchange_st", "bench", "tools", "tests")
        for p in (ROOT / folder).rglob("*.py")
    ]:
        for doc, heading in CITATION.findall(path.read_text()):
            cited += 1
            target = ROOT / doc
            if not target.is_file():
                missing.append(f"{path.name}: {doc}")
            elif heading and not any(
                h == heading or h.startswith(heading + " (") for h in _headings(target)
            ):
                missing.append(f'{path.name}: {doc}, "{heading}"')
    assert cited > 10
    assert not missing, "cited notes that do not exist:\n" + "\n".join(missing)


# Outputs of the fixed-seed model below, recorded with the flat package of
# 73d43d1 (`exchange_st.model`), before the move into subpackages: a change of
# structure must leave them equal. Per image: mean, std, one pixel.
FLAT_PACKAGE_OUTPUTS = {
    "s2c": (0.4674925790323565, 0.020473108843430766, 0.4443873167037964),
    "c2s": (0.4675116828875616, 0.02806923730840687, 0.4755585193634033),
    "c2c": (0.4680033868851347, 0.020178064921387573, 0.4582552909851074),
    "s2s": (0.4676202117601254, 0.028058384070002988, 0.4763660132884979),
}
FLAT_PACKAGE_TOTAL = 50.619972229003906
FLAT_PACKAGE_STYLIZE_MEAN = 0.46779072284698486


def test_outputs_equal_those_of_the_flat_package():
    import keras
    import numpy as np

    from exchange_st.nn.model import ExchangeStyleTransfer

    keras.utils.set_random_seed(0)
    model = ExchangeStyleTransfer(
        vgg_weights=None,
        code_dim=16,
        num_exchange_blocks=1,
        compressor_filters=(8, 8),
        num_pre_fusion_blocks=1,
        num_post_fusion_blocks=1,
        upsample_filters=(16, 8, 8),
        exchange_targets="detached",
    )
    model.build()
    y, x = np.mgrid[0:40, 0:48] / 48.0
    content = np.stack([x, y, x * y], -1)[None].astype("float32")
    content = np.concatenate([content, content[:, ::-1]], 0)
    y, x = np.mgrid[0:32, 0:32] / 32.0
    style = np.stack([np.sin(6 * x), np.cos(5 * y), x], -1)[None].astype("float32") * 0.5 + 0.5
    style = np.concatenate([style, style[:, :, ::-1]], 0)
    out = model(content, style)
    for key, expected in FLAT_PACKAGE_OUTPUTS.items():
        a = keras.ops.convert_to_numpy(out[key]).astype("float64")
        got = (a.mean(), a.std(), a[0, 5, 7, 1])
        np.testing.assert_allclose(got, expected, rtol=1e-5, err_msg=key)
    total = float(model.loss_terms(out, content, style)["total"])
    assert total == pytest.approx(FLAT_PACKAGE_TOTAL, rel=1e-5)
    stylized = keras.ops.convert_to_numpy(model.stylize(content, style, alpha=0.5))
    assert float(stylized.mean()) == pytest.approx(FLAT_PACKAGE_STYLIZE_MEAN, rel=1e-5)
