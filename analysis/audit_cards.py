"""Put the scorecards of an ``mdsym audit`` into the shipped models' cards.

    mdsym audit pet-ethanol pet-ethanol-noaug -o audit-shipped
    python analysis/audit_cards.py audit-shipped [--note "measured on ..."]

For every shipped model in ``OUT/audit.json`` the section "## Stability audit" of
``inputs/models/<model>.md`` is written (replaced when it is there): the command,
the mode, the wall time of the whole audit and the model's scorecard table.
"""

import argparse
import json
import re
from pathlib import Path

from mdsym.models import shipped
from mdsym.reports.scorecard import table
from mdsym.workflows.audit_battery import DEFAULT_SPECS

CARDS = Path(__file__).resolve().parent.parent / "inputs" / "models"
HEADING = "## Stability audit"


def section(result: dict, model: dict, command: str, note: str) -> str:
    s = result["settings"]
    lines = [HEADING, "",
             f"`{command}` (mode `{result['mode']}`, seed {result['seed']}; the whole audit of "
             f"{len(result['models'])} model(s) took {result.get('wall_s_total', result['wall_s']) / 60:.0f} min"
             f"{note}). On "
             f"`{Path(model['structure']).name}`: NVE at {', '.join(f'{x:g}' for x in s['nve_timesteps_fs'])} fs "
             f"for {s['nve_duration_fs']:g} fs, NVT at {', '.join(f'{x:g}' for x in s['nvt_temperatures_K'])} K "
             f"for {s['nvt_duration_fs']:g} fs, dynamic equivariance over {s['dynamic_duration_fs']:g} fs "
             f"(floor: `{model['floor']['model']}`). Columns: see `mdsym/reports/scorecard.py`; definitions of the public "
             "audits' figures: `mdsym/analysis/field_scores.py`.", ""]
    lines += table(model["rows"], with_model=False)
    hidden = model["hidden_layers"]
    if "skipped" in hidden:
        lines += ["", f"Hidden layers: not measured: {hidden['skipped']}."]
    elif not hidden["layers"]:
        lines += ["", "Hidden layers: `hidden_layer_content` returned no layer for this model."]
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="the audit folder (holding audit.json)")
    parser.add_argument("--note", default="", help="appended to the timing, e.g. ', on a loaded 2-core machine'")
    args = parser.parse_args()
    result = json.loads((args.out / "audit.json").read_text())
    names = [m["model"] for m in result["models"]]
    command = f"mdsym audit {' '.join(names)}" + (" --fast" if result["mode"] == "fast" else "")
    if list(result["specs"]) != ["none"] + [x for x in DEFAULT_SPECS if x != "none"]:
        command += f" --specs {','.join(result['specs'])}"

    for model in result["models"]:
        if model["model"] not in shipped.names():
            continue
        card = CARDS / f"{model['model']}.md"
        text = card.read_text()
        new = section(result, model, command, args.note)
        pattern = re.compile(rf"^{re.escape(HEADING)}\n.*?(?=^## |\Z)", re.S | re.M)
        text = pattern.sub(new + "\n", text) if pattern.search(text) else text.rstrip("\n") + "\n\n" + new
        card.write_text(text.rstrip("\n") + "\n")
        print(f"{card}: {HEADING} written")


if __name__ == "__main__":
    main()
