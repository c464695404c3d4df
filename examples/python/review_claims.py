#!/usr/bin/env python3
"""Review insurance claims with the built-in template, with structured output and an audit log.

Each claim (one JSON object per line of the input file, or the sample below) goes through the
built-in ``insurance_claim_review_en`` template: the model checks coverage and the hospital
level step by step and answers in JSON that follows the template's schema, so the verdict is
always one of ``approve``, ``reject`` or ``manual_review``. Every request is checked by the
safety policy and recorded in a tamper-evident audit log, verified at the end.

    python examples/python/review_claims.py
    python examples/python/review_claims.py claims.jsonl --audit-dir audit/ --tenant claims-team
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
import tempfile
from typing import Any, Dict, List

import llmedge

SAMPLE = [
    {
        "claim_id": "CLM-1",
        "diagnosis": "fractured wrist",
        "policy_coverage": ["fractures", "pneumonia"],
        "hospital_level": "tertiary",
        "policy_min_hospital_level": "secondary",
    },
    {
        "claim_id": "CLM-2",
        "diagnosis": "cosmetic surgery",
        "policy_coverage": ["fractures", "pneumonia"],
        "hospital_level": "private clinic",
        "policy_min_hospital_level": "secondary",
    },
]


def main(argv: List[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("claims", nargs="?", help="JSON Lines file of claims (default: a sample)")
    parser.add_argument("--audit-dir", help="audit log directory (default: a temporary one)")
    parser.add_argument("--tenant", default="claims-review")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)

    claims: List[Dict[str, Any]] = SAMPLE
    if args.claims:
        lines = pathlib.Path(args.claims).read_text(encoding="utf-8").splitlines()
        claims = [json.loads(line) for line in lines if line.strip()]
    audit_dir = args.audit_dir or tempfile.mkdtemp(prefix="llmedge-audit-")

    template = llmedge.TemplateLibrary.builtin().get("insurance_claim_review_en")
    with llmedge.Model(audit_dir=audit_dir, tenant=args.tenant) as model:
        for i, claim in enumerate(claims):
            try:
                out = model.run_template(
                    template,
                    {"claim": json.dumps(claim, ensure_ascii=False)},
                    seed=args.seed,
                    max_tokens=512,
                    request_id=f"{args.tenant}-{i + 1}",
                )
            except llmedge.SafetyBlockedError as e:
                print(f"{claim.get('claim_id')}: refused by the safety policy ({e})")
                continue
            verdict = out.json["verdict"]
            print(f"{claim.get('claim_id')}: {verdict}  (request {out.completion.request_id})")

    report = llmedge.audit_verify(audit_dir)
    print(f"audit log {audit_dir}: {'OK' if report['ok'] else 'FAILED'}, {report['records']} record(s)")
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
