#!/usr/bin/env python3
"""Draft a radiology report from an X-ray image (PNG, JPEG, ... or DICOM) and a complaint.

The report template (xray_report.toml beside this file) becomes chat messages; the image is
attached to the request message, and the vision-language model drafts FINDINGS / IMPRESSION /
RECOMMENDATION for a radiologist to review. DICOM files are windowed with their own Window
Center/Width unless --window is given; their patient tags never reach the prompt, the output or
the audit log (only the pixels are read).

    python examples/vision/xray_report.py --model model.gguf --mmproj mmproj.gguf \\
        --image chest.dcm --complaint "Cough and fever for five days" [--window 40,400] [--lang zh]
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys

import llmedge

TEMPLATES = pathlib.Path(__file__).with_name("xray_report.toml")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="text GGUF of the vision-language model")
    ap.add_argument("--mmproj", required=True, help="its vision projector (mmproj GGUF)")
    ap.add_argument("--image", required=True, help="X-ray image: PNG, JPEG, WebP, BMP, TIFF, GIF or DICOM")
    ap.add_argument("--complaint", required=True, help="the patient's presenting complaint")
    ap.add_argument("--examination", help="e.g. 'Chest X-ray, PA view'")
    ap.add_argument("--window", help="DICOM window CENTER,WIDTH (default: the file's)")
    ap.add_argument("--frame", type=int, default=0, help="DICOM frame (0-based)")
    ap.add_argument("--lang", choices=["en", "zh"], default="en")
    ap.add_argument("--max-tokens", type=int, default=400)
    ap.add_argument("--audit-dir", help="record the request in a tamper-evident audit log")
    ap.add_argument("--json", action="store_true", help="print the report with usage as JSON")
    args = ap.parse_args(argv)

    window = None
    if args.window:
        try:
            center, width = (float(x) for x in args.window.split(","))
        except ValueError:
            ap.error("--window takes CENTER,WIDTH")
        window = (center, width)
    try:
        image = llmedge.Image.open(args.image, window=window, frame=args.frame)
        template = llmedge.TemplateLibrary.load_dir(TEMPLATES.parent).get(f"xray_report_{args.lang}")
        variables = {"complaint": args.complaint}
        if args.examination:
            variables["examination"] = args.examination
        messages = template.messages(variables)
        # The image goes with the request (the last user message), before its text.
        messages[-1]["content"] = [image, messages[-1]["content"]]
        with llmedge.Model(args.model, mmproj=args.mmproj, audit_dir=args.audit_dir) as model:
            out = model.chat_complete(messages, max_tokens=args.max_tokens, temperature=0.2)
    except llmedge.Error as e:
        print(f"error ({e.name}): {e}", file=sys.stderr)
        return e.code
    if args.json:
        print(json.dumps({"report": out.text, "finish_reason": out.finish_reason,
                          "prompt_tokens": out.usage.prompt_tokens,
                          "completion_tokens": out.usage.completion_tokens,
                          "image_sha256": image.sha256}, ensure_ascii=False))
    else:
        print(out.text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
