"""A batch cut into micro-batches of rows, so that it streams through a pipeline of chips.

Why: a pipeline stage on chip 1 can only start once chip 0 has sent it the whole activation, so
with the batch in one piece the chips take turns. Cut into c micro-batches, the chip work is
written c times over row slices (each micro-batch's values renamed `v#mb<j>`, the weights shared
by name, so each chip holds them once), and the system compiler lowers stage by stage: stage 2
of micro-batch 0 runs on its chip while stage 1 of micro-batch 1 runs on the previous one. The
host slices the inputs before the run (`rows` nodes) and joins the outputs after it (`concat`).

Only row-wise chip work is cut: every activation (a value that is not a constant) 2-D with the
batch as its rows, every matmul's weights a constant. Anything else keeps the batch whole.
"""
from __future__ import annotations

from .graph import Graph, Node, TensorType


def batch_rows(graph: Graph, chip: list[Node]) -> int | None:
    """The batch (rows) the chip work is row-wise over, or None when it is not (module docstring)."""
    rows = set()
    for n in chip:
        if n.op == "matmul" and n.inputs[1] not in graph.constants:
            return None
        for v in [*n.inputs, *n.outputs]:
            if v in graph.constants:
                continue
            shape = graph.types[v].shape
            if len(shape) != 2:
                return None
            rows.add(shape[0])
    return rows.pop() if len(rows) == 1 else None


def name(value: str, j: int) -> str:
    return f"{value}#mb{j}"


def split_rows(graph: Graph, pre: list[Node], chip: list[Node], post: list[Node], c: int) -> Graph:
    """`graph` with its chip work in c micro-batches (c divides the batch_rows): pre nodes, then a
    `rows` node per chip input and micro-batch, the chip nodes micro-batch by micro-batch, a
    `concat` per chip output the host reads, then the post nodes (on the original names)."""
    m_all = batch_rows(graph, chip)
    assert m_all is not None and m_all % c == 0, (m_all, c)
    m = m_all // c
    g = Graph(inputs=dict(graph.inputs), outputs=list(graph.outputs), constants=dict(graph.constants),
              nodes=list(pre), types=dict(graph.types))
    if hasattr(graph, "output_names"):
        g.output_names = graph.output_names
    made = {o for n in chip for o in n.outputs}
    acts = list(dict.fromkeys(v for n in chip for v in n.inputs if v not in graph.constants and v not in made))
    for v in acts:
        t = graph.types[v]
        for j in range(c):
            g.nodes.append(Node("rows", f"{v}#rows{j}", [v], [name(v, j)], {"lo": j * m, "hi": (j + 1) * m}))
            g.types[name(v, j)] = TensorType(t.dtype, (m, t.shape[1]))
    for j in range(c):
        for n in chip:
            ins = [i if i in graph.constants else name(i, j) for i in n.inputs]
            for o in n.outputs:
                t = graph.types[o]
                g.types[name(o, j)] = TensorType(t.dtype, (m, t.shape[1]))
            g.nodes.append(Node(n.op, f"{n.name}#mb{j}", ins, [name(o, j) for o in n.outputs], dict(n.attrs)))
    read = set(graph.outputs) | {i for n in post for i in n.inputs}
    for v in dict.fromkeys(o for n in chip for o in n.outputs if o in read):
        g.nodes.append(Node("concat", f"{v}#concat", [name(v, j) for j in range(c)], [v]))
    g.nodes += post
    return g
