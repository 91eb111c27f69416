"""Build loadtest/flows/text-chain.json, the flow that does work in the throughput run, from Langflow's own registry.

ChatInput -> Prompt Template -> Text Operations (Text Clean) -> Text Operations (Text Replace, regex) ->
Text Operations (Case Conversion) -> ChatOutput: string work on every run and no external API. Each node is the
installed Langflow's registry entry of its type, set up the way the editor does it (the prompt's variables by
`process_prompt_template`, the operations' outputs by the component's own `update_outputs`), and committed
without component code like charts/langflow-runtime/files/flows/echo.json: the runtime's fill-component-code
initContainer fills it from the Langflow image at start.

Usage (with the Langflow the toolchain installs): .tools/langflow-venv/bin/python loadtest/flows/build_text_chain.py
"""

from __future__ import annotations

import asyncio
import copy
import itertools
import json
import uuid
from pathlib import Path
from typing import Any

OUT = Path(__file__).with_name("text-chain.json")
NAME = "text-chain"
PROMPT = "Request received: {request}\n\nNormalise the   request   above,   then   answer in   capitals."
# (node id suffix, operation, the fields the operation reads)
OPERATIONS: list[tuple[str, str, dict[str, Any]]] = [
    ("clean", "Text Clean", {"remove_extra_spaces": True, "remove_empty_lines": True}),
    ("replace", "Text Replace", {"use_regex": True, "search_pattern": r"\s+([,.!?])", "replacement_text": r"\1"}),
    ("case", "Case Conversion", {"case_type": "uppercase"}),
]


def registry() -> dict[str, Any]:
    from lfx.interface.components import import_langflow_components
    from lfx.utils.component_aliases import flatten_components_with_aliases

    return flatten_components_with_aliases(asyncio.run(import_langflow_components())["components"])


def node(reg: dict[str, Any], kind: str, suffix: str) -> dict[str, Any]:
    entry = copy.deepcopy(reg[kind])
    entry["template"]["code"]["value"] = ""  # filled at start from the image's Langflow
    node_id = f"{kind.replace(' ', '')}-{suffix}"
    return {"id": node_id, "data": {"type": kind, "id": node_id, "node": entry}}


def output_dicts(component: type, outputs: list[Any]) -> list[dict[str, Any]]:
    """Outputs made by a component's update_outputs, typed as the editor types them: by their method's return."""
    import typing

    out = []
    for o in outputs:
        if not o.types:
            returns = typing.get_type_hints(getattr(component, o.method)).get("return")
            o.add_types([returns.__name__])
        if o.selected is None:
            o.selected = o.types[0]
        out.append(o.to_dict())
    return out


def edge(src: dict[str, Any], output: str, dst: dict[str, Any], field: str) -> dict[str, Any]:
    out = next(o for o in src["data"]["node"]["outputs"] if o["name"] == output)
    target = dst["data"]["node"]["template"][field]
    return {
        "source": src["id"],
        "target": dst["id"],
        "data": {
            "sourceHandle": {
                "dataType": src["data"]["type"],
                "id": src["id"],
                "name": output,
                "output_types": out.get("types") or [out.get("selected")],
            },
            "targetHandle": {
                "fieldName": field,
                "id": dst["id"],
                "inputTypes": target.get("input_types"),
                "type": target.get("type"),
            },
        },
    }


def build() -> dict[str, Any]:
    from lfx.base.prompts.api_utils import process_prompt_template
    from lfx.components.processing.text_operations import TextOperations

    reg = registry()
    chat_in, chat_out = node(reg, "ChatInput", "tc0"), node(reg, "ChatOutput", "tc0")
    prompt = node(reg, "Prompt Template", "tc0")
    pnode = prompt["data"]["node"]
    pnode["template"]["template"]["value"] = PROMPT
    process_prompt_template(PROMPT, "template", pnode["custom_fields"], pnode["template"])
    ops = []
    for suffix, operation, fields in OPERATIONS:
        op = node(reg, "TextOperations", suffix)
        onode = op["data"]["node"]
        value = [o for o in onode["template"]["operation"]["options"] if o["name"] == operation]
        onode["template"]["operation"]["value"] = value
        for key, v in fields.items():
            onode["template"][key]["value"] = v
        component = TextOperations()
        onode["template"] = component.update_build_config(onode["template"], value, "operation")
        onode["outputs"] = output_dicts(TextOperations, component.update_outputs(onode, "operation", value)["outputs"])
        ops.append(op)
    chain = [chat_in, prompt, *ops, chat_out]
    edges = [edge(chat_in, "message", prompt, "request"), edge(prompt, "prompt", ops[0], "text_input")]
    edges += [edge(a, "message", b, "text_input") for a, b in itertools.pairwise(ops)]
    edges.append(edge(ops[-1], "message", chat_out, "input_value"))
    return {
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"langflow-platform/loadtest/{NAME}")),
        "data": {"nodes": chain, "edges": edges},
        "is_component": False,
        "name": NAME,
        "description": "Throughput load: a prompt template and three text operations (no LLM, no external API)",
        "endpoint_name": NAME,
    }


if __name__ == "__main__":
    OUT.write_text(json.dumps(build(), indent=1) + "\n")
    print(f"wrote {OUT}")
