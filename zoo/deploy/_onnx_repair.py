"""A workaround for one converter: jax2onnx's 4-D `MaxPool` nodes, which onnxruntime refuses.

Used only for ONNX exports on the JAX backend ([`zoo.deploy.export.export`][]); its
`save_onnx` saves every ONNX export the zoo stamps, on any backend.
"""

from __future__ import annotations

import os

__all__ = ["repair_jax2onnx_max_pool", "save_onnx"]


def repair_jax2onnx_max_pool(path):
    """Rewrite the 4-D `MaxPool` nodes jax2onnx writes so that onnxruntime can run them.

    A workaround for one converter, used only for ONNX exports on the JAX
    backend. Keras's JAX max pooling over `(N, H, W, C)` reaches jax2onnx
    as a window `(1, kh, kw, 1)`; jax2onnx adds two leading axes and pools
    over all four others, which onnxruntime refuses ("Unsupported pooling
    size": it pools over at most three axes). The same numbers come from
    `Transpose` to `(N, C, H, W)`, a 2-D `MaxPool` and a `Transpose`
    back, which is what this writes instead of `Unsqueeze, Unsqueeze,
    MaxPool, Squeeze`. Returns how many nodes were rewritten.
    """
    import onnx
    from onnx import helper

    model = onnx.load(path)  # with any external weights file beside it
    graph = model.graph
    producer = {output: node for node in graph.node for output in node.output}
    consumers = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    rewritten = 0
    for pool in [node for node in graph.node if node.op_type == "MaxPool"]:
        attributes = {a.name: helper.get_attribute_value(a) for a in pool.attribute}
        kernel = list(attributes["kernel_shape"])
        strides = list(attributes.get("strides", [1] * 4))
        pads = list(attributes.get("pads", [0] * 8))
        inner = producer.get(pool.input[0])
        outer = producer.get(inner.input[0]) if inner is not None else None
        after = consumers.get(pool.output[0], [])
        if not (
            len(kernel) == 4
            and kernel[0] == kernel[3] == strides[0] == strides[3] == 1
            and not any(pads[i] for i in (0, 3, 4, 7))
            and attributes.get("auto_pad", b"NOTSET") in (b"NOTSET", "NOTSET")
            and inner is not None
            and inner.op_type == outer.op_type == "Unsqueeze"
            and len(after) == 1
            and after[0].op_type == "Squeeze"
        ):
            continue
        squeeze, name = after[0], pool.name or f"max_pool_{rewritten}"
        replacement = [
            helper.make_node("Transpose", [outer.input[0]], [f"{name}_nchw"], perm=[0, 3, 1, 2]),
            helper.make_node(
                "MaxPool",
                [f"{name}_nchw"],
                [f"{name}_pooled"],
                kernel_shape=kernel[1:3],
                strides=strides[1:3],
                pads=[pads[1], pads[2], pads[5], pads[6]],
                ceil_mode=attributes.get("ceil_mode", 0),
            ),
            helper.make_node(
                "Transpose", [f"{name}_pooled"], [squeeze.output[0]], perm=[0, 2, 3, 1]
            ),
        ]
        position = list(graph.node).index(outer)
        for node in (outer, inner, pool, squeeze):
            graph.node.remove(node)
        for offset, node in enumerate(replacement):
            graph.node.insert(position + offset, node)
        rewritten += 1
    if rewritten:
        save_onnx(model, path)
    return rewritten


def save_onnx(model, path):
    """Save the ONNX `model` over `path`, keeping its weights in a `.data` file if they were.

    An export whose weights are too large to embed keeps them in `path + ".data"`;
    a rewritten graph (`repair_jax2onnx_max_pool`, the export's stamp)
    must be saved the same way, into a fresh `.data` file.
    """
    import onnx

    data_file = path + ".data"
    external = os.path.exists(data_file)
    if external:
        os.remove(data_file)  # its tensors are in memory; onnx appends to an existing file
    onnx.save(
        model,
        path,
        save_as_external_data=external,
        all_tensors_to_one_file=True,
        location=os.path.basename(data_file),
    )
