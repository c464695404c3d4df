#!/usr/bin/env python3
"""Writes a tiny random vision-language pair and its test images (seeded, byte-identical reruns).

Why: no real small VLM can be downloaded here, yet the vision path (mmproj loading, image
encoding, embedding reuse, token equality with a reference loop) must be tested on real
llama.cpp code. The pair is a 2-layer llama text model with SmolLM2's tokenizer and chat
template plus a LLaVA-style ("mlp" projector) CLIP mmproj; see llama-cpp-facts.md.

Beside the images it writes `<name>.rgb`: the RGB8 pixels each image must decode to,
computed here with numpy from the values the image was written from (not by decoding it),
so tests and the reference loop have an independent expectation. DICOM pixels are windowed
here with the linear VOI function of DICOM PS3.3 C.11.2.1.2.1.

    python3 vlm_fixtures.py --base models/cache/SmolLM2-135M-Instruct.Q4_1.gguf --out DIR [--seed 0]

Needs numpy, gguf, pillow and pydicom.
"""

import argparse
import io
import json
import os

import numpy as np
from gguf import GGUFReader, GGUFWriter, GGMLQuantizationType
from PIL import Image

N_EMBD, N_HEAD, N_HEAD_KV, N_FF, N_LAYER, N_CTX = 64, 4, 2, 128, 2, 2048
V_EMBD, V_FF, V_BLOCKS, V_HEADS, IMAGE_SIZE, PATCH = 32, 48, 2, 2, 32, 8
TOKENIZER_KEYS = [
    "tokenizer.ggml.model",
    "tokenizer.ggml.pre",
    "tokenizer.ggml.tokens",
    "tokenizer.ggml.token_type",
    "tokenizer.ggml.merges",
    "tokenizer.ggml.bos_token_id",
    "tokenizer.ggml.eos_token_id",
    "tokenizer.ggml.unknown_token_id",
    "tokenizer.ggml.padding_token_id",
    "tokenizer.ggml.add_bos_token",
    "tokenizer.ggml.add_space_prefix",
    "tokenizer.chat_template",
]
# Patient data the DICOM files carry: tests check none of it reaches a prompt or a log.
PATIENT = {"PatientName": "DOE^JANE", "PatientID": "MRN-4471-XYZ", "PatientBirthDate": "19610203"}


def copy_field(writer, reader, key):
    field = reader.fields.get(key)
    if field is None:
        return
    value = field.contents()
    vtype = field.types[0]
    if vtype.name == "ARRAY":
        writer.add_array(key, value)
    elif vtype.name == "STRING":
        writer.add_string(key, value)
    elif vtype.name == "BOOL":
        writer.add_bool(key, bool(value))
    else:
        writer.add_uint32(key, int(value))


def write_text_model(path, base, rng):
    reader = GGUFReader(base)
    n_vocab = len(reader.fields["tokenizer.ggml.tokens"].contents())
    w = GGUFWriter(path, "llama")
    w.add_name("llmedge-tiny-vlm-text")
    w.add_context_length(N_CTX)
    w.add_embedding_length(N_EMBD)
    w.add_block_count(N_LAYER)
    w.add_feed_forward_length(N_FF)
    w.add_head_count(N_HEAD)
    w.add_head_count_kv(N_HEAD_KV)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_rope_dimension_count(N_EMBD // N_HEAD)
    w.add_vocab_size(n_vocab)
    w.add_file_type(1)  # mostly F16
    for key in TOKENIZER_KEYS:
        copy_field(w, reader, key)

    def mat(n_out, n_in, std=0.3):
        return (rng.standard_normal((n_out, n_in)) * std).astype(np.float16)

    head_dim = N_EMBD // N_HEAD
    # Layers as strong as the residual stream, so the context (and the image) steers the
    # choice; an untied output matrix, so the model does not just repeat its last token.
    w.add_tensor("token_embd.weight", (rng.standard_normal((n_vocab, N_EMBD)) * 0.5).astype(np.float16))
    w.add_tensor("output.weight", (rng.standard_normal((n_vocab, N_EMBD)) * 0.5).astype(np.float16))
    w.add_tensor("output_norm.weight", np.ones(N_EMBD, dtype=np.float32))
    for i in range(N_LAYER):
        p = f"blk.{i}"
        w.add_tensor(f"{p}.attn_norm.weight", np.ones(N_EMBD, dtype=np.float32))
        w.add_tensor(f"{p}.attn_q.weight", mat(N_EMBD, N_EMBD))
        w.add_tensor(f"{p}.attn_k.weight", mat(N_HEAD_KV * head_dim, N_EMBD))
        w.add_tensor(f"{p}.attn_v.weight", mat(N_HEAD_KV * head_dim, N_EMBD))
        w.add_tensor(f"{p}.attn_output.weight", mat(N_EMBD, N_EMBD))
        w.add_tensor(f"{p}.ffn_norm.weight", np.ones(N_EMBD, dtype=np.float32))
        w.add_tensor(f"{p}.ffn_gate.weight", mat(N_FF, N_EMBD))
        w.add_tensor(f"{p}.ffn_up.weight", mat(N_FF, N_EMBD))
        w.add_tensor(f"{p}.ffn_down.weight", mat(N_EMBD, N_FF))
    finish(w)


def write_mmproj(path, rng, projection_dim, image_size=IMAGE_SIZE, patch=PATCH, v_embd=V_EMBD, v_ff=V_FF,
                 v_blocks=V_BLOCKS, v_heads=V_HEADS):
    w = GGUFWriter(path, "clip")
    w.add_name("llmedge-tiny-vlm-mmproj")
    w.add_file_type(1)
    w.add_string("clip.projector_type", "mlp")
    w.add_bool("clip.has_vision_encoder", True)
    w.add_bool("clip.use_gelu", True)
    w.add_uint32("clip.vision.image_size", image_size)
    w.add_uint32("clip.vision.patch_size", patch)
    w.add_uint32("clip.vision.embedding_length", v_embd)
    w.add_uint32("clip.vision.feed_forward_length", v_ff)
    w.add_uint32("clip.vision.block_count", v_blocks)
    w.add_uint32("clip.vision.attention.head_count", v_heads)
    w.add_float32("clip.vision.attention.layer_norm_epsilon", 1e-6)
    w.add_uint32("clip.vision.projection_dim", projection_dim)
    w.add_array("clip.vision.image_mean", [0.5, 0.5, 0.5])
    w.add_array("clip.vision.image_std", [0.5, 0.5, 0.5])

    def f32(*shape, std=0.2):
        return (rng.standard_normal(shape) * std).astype(np.float32)

    n_patches = (image_size // patch) ** 2
    # numpy (out, in, kh, kw) is ggml ne [kw, kh, in, out]
    w.add_tensor("v.patch_embd.weight", f32(v_embd, 3, patch, patch, std=0.1).astype(np.float16))
    w.add_tensor("v.patch_embd.bias", f32(v_embd))
    w.add_tensor("v.position_embd.weight", f32(n_patches, v_embd))
    w.add_tensor("v.pre_ln.weight", np.ones(v_embd, dtype=np.float32))
    w.add_tensor("v.pre_ln.bias", np.zeros(v_embd, dtype=np.float32))
    for i in range(v_blocks):
        p = f"v.blk.{i}"
        for name in ("attn_q", "attn_k", "attn_v", "attn_out"):
            w.add_tensor(f"{p}.{name}.weight", f32(v_embd, v_embd))
            w.add_tensor(f"{p}.{name}.bias", f32(v_embd, std=0.02))
        w.add_tensor(f"{p}.ffn_up.weight", f32(v_ff, v_embd))
        w.add_tensor(f"{p}.ffn_up.bias", f32(v_ff, std=0.02))
        w.add_tensor(f"{p}.ffn_down.weight", f32(v_embd, v_ff))
        w.add_tensor(f"{p}.ffn_down.bias", f32(v_embd, std=0.02))
        for ln in ("ln1", "ln2"):
            w.add_tensor(f"{p}.{ln}.weight", np.ones(v_embd, dtype=np.float32))
            w.add_tensor(f"{p}.{ln}.bias", np.zeros(v_embd, dtype=np.float32))
    # A strong projection: image tokens must move the text model's choices.
    w.add_tensor("mm.0.weight", f32(projection_dim, v_embd, std=0.5))
    w.add_tensor("mm.0.bias", f32(projection_dim, std=0.1))
    w.add_tensor("mm.2.weight", f32(projection_dim, projection_dim, std=0.5))
    w.add_tensor("mm.2.bias", f32(projection_dim, std=0.1))
    finish(w)


def finish(w):
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def save_rgb(out, name, rgb):
    """The expected RGB8 pixels, row-major, with a sidecar of their shape."""
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    with open(os.path.join(out, f"{name}.rgb"), "wb") as f:
        f.write(rgb.tobytes())
    return {"width": int(rgb.shape[1]), "height": int(rgb.shape[0])}


def pattern(rng, h, w):
    """A smooth colour pattern plus a little noise: JPEG keeps it close to the original."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    r = 128 + 100 * np.sin(x / 5.0)
    g = 128 + 100 * np.cos(y / 7.0)
    b = 128 + 60 * np.sin((x + y) / 9.0)
    img = np.stack([r, g, b], axis=-1) + rng.normal(0, 2, (h, w, 3))
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def write_images(out, rng):
    meta = {}
    # PNG (RGB), and the same pixels losslessly as BMP, TIFF and WebP.
    rgb = pattern(rng, 40, 48)
    Image.fromarray(rgb).save(os.path.join(out, "pattern.png"), optimize=False)
    Image.fromarray(rgb).save(os.path.join(out, "pattern.bmp"))
    Image.fromarray(rgb).save(os.path.join(out, "pattern.tiff"), compression="tiff_lzw")
    Image.fromarray(rgb).save(os.path.join(out, "pattern.webp"), lossless=True, exact=True)
    meta["pattern"] = save_rgb(out, "pattern", rgb)

    # A second, different picture: outputs for it must differ (the image matters).
    other = pattern(rng, 32, 32)[::-1, ::-1] ^ 0x55
    Image.fromarray(other).save(os.path.join(out, "other.png"))
    meta["other"] = save_rgb(out, "other", other)

    # JPEG, 4:4:4 at quality 95: the decoders under test may differ from libjpeg by a unit
    # or two, so the expectation is the PIL decode of the very file.
    jpeg = os.path.join(out, "photo.jpg")
    Image.fromarray(rgb).save(jpeg, quality=95, subsampling=0)
    meta["photo"] = save_rgb(out, "photo", np.asarray(Image.open(jpeg).convert("RGB")))

    # JPEG with EXIF orientation 6 (display = stored rotated 90° clockwise).
    stored = pattern(rng, 24, 40)
    exif = Image.Exif()
    exif[0x0112] = 6
    rotated = os.path.join(out, "rotated.jpg")
    Image.fromarray(stored).save(rotated, quality=95, subsampling=0, exif=exif.tobytes())
    decoded = np.asarray(Image.open(rotated).convert("RGB"))
    meta["rotated"] = save_rgb(out, "rotated", np.rot90(decoded, k=-1))

    # 16-bit grayscale PNG (an X-ray-like gradient): RGB8 = round(v * 255 / 65535), gray.
    y, x = np.mgrid[0:36, 0:44]
    gray16 = ((x * 1499 + y * 977 + (x * y) % 251) % 65536).astype(np.uint16)
    Image.fromarray(gray16).save(os.path.join(out, "xray16.png"))
    g8 = np.rint(gray16.astype(np.float64) * 255.0 / 65535.0).astype(np.uint8)
    meta["xray16"] = save_rgb(out, "xray16", np.stack([g8] * 3, axis=-1))

    # 8-bit grayscale with alpha (alpha dropped), as GIF-free PNG.
    la = np.stack([g8, np.full_like(g8, 200)], axis=-1)
    Image.fromarray(la, mode="LA").save(os.path.join(out, "gray_alpha.png"))
    meta["gray_alpha"] = save_rgb(out, "gray_alpha", np.stack([g8] * 3, axis=-1))

    # Animated GIF: the first frame counts. A 4-colour palette keeps it exact.
    palette = np.array([[0, 0, 0], [255, 0, 0], [0, 255, 0], [0, 0, 255]], dtype=np.uint8)
    idx0 = ((np.mgrid[0:20, 0:30][0] // 5 + np.mgrid[0:20, 0:30][1] // 6) % 4).astype(np.uint8)
    frames = []
    for k in range(3):
        f = Image.fromarray((idx0 + k) % 4, mode="P")
        f.putpalette(palette.flatten().tolist() + [0] * (768 - 12))
        frames.append(f)
    frames[0].save(os.path.join(out, "anim.gif"), save_all=True, append_images=frames[1:], duration=100, loop=0)
    meta["anim"] = save_rgb(out, "anim", palette[idx0])

    # A decompression bomb: a valid 20000 x 20000 PNG header, a few hundred bytes on disk.
    bomb = Image.new("L", (20000, 20000))
    buf = io.BytesIO()
    bomb.save(buf, format="PNG", optimize=True)
    with open(os.path.join(out, "bomb.png"), "wb") as f:
        f.write(buf.getvalue())

    # A corrupt image: a PNG cut in half.
    with open(os.path.join(out, "pattern.png"), "rb") as f:
        data = f.read()
    with open(os.path.join(out, "corrupt.png"), "wb") as f:
        f.write(data[: len(data) // 2])
    return meta


def window_linear(values, center, width):
    """DICOM PS3.3 C.11.2.1.2.1, linear VOI function, to 0..255."""
    c, w = center - 0.5, width - 1.0
    y = ((values - c) / w + 0.5) * 255.0
    y = np.where(values <= c - w / 2, 0.0, np.where(values > c + w / 2, 255.0, y))
    return np.clip(round_half_up(y), 0, 255).astype(np.uint8)


def round_half_up(x):
    """Rounding as the decoders under test do it (numpy's rint rounds halves to even)."""
    return np.floor(x + 0.5)


def write_dicoms(out):
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, JPEG2000Lossless, SecondaryCaptureImageStorage

    meta = {}

    def dataset(rows, cols, photometric, frames=1, ts=ExplicitVRLittleEndian):
        fm = FileMetaDataset()
        fm.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
        fm.MediaStorageSOPInstanceUID = "1.2.826.0.1.3680043.8.498.1"
        fm.TransferSyntaxUID = ts
        fm.ImplementationClassUID = "1.2.826.0.1.3680043.8.498.2"
        ds = Dataset()
        ds.file_meta = fm
        ds.SOPClassUID = SecondaryCaptureImageStorage
        ds.SOPInstanceUID = fm.MediaStorageSOPInstanceUID
        ds.StudyInstanceUID = "1.2.826.0.1.3680043.8.498.3"
        ds.SeriesInstanceUID = "1.2.826.0.1.3680043.8.498.4"
        ds.Modality = "CR"
        for k, v in PATIENT.items():
            setattr(ds, k, v)
        ds.StudyDescription = "CHEST PA " + PATIENT["PatientName"]
        ds.Rows, ds.Columns = rows, cols
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = photometric
        ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 12, 11
        ds.PixelRepresentation = 0
        if frames > 1:
            ds.NumberOfFrames = frames
        return ds

    def save(ds, name):
        ds.save_as(os.path.join(out, name), enforce_file_format=True)

    # MONOCHROME2, 12-bit CT-like values, rescale slope 1 intercept -1024, window 40/400.
    y, x = np.mgrid[0:40, 0:40]
    raw = ((x * 53 + y * 71) % 4096).astype(np.uint16)
    ds = dataset(40, 40, "MONOCHROME2")
    ds.RescaleSlope, ds.RescaleIntercept = 1, -1024
    ds.WindowCenter, ds.WindowWidth = 1000, 3000
    ds.PixelData = raw.tobytes()
    save(ds, "ct_mono2.dcm")
    hu = raw.astype(np.float64) - 1024.0
    g = window_linear(hu, 1000, 3000)
    meta["ct_mono2"] = save_rgb(out, "ct_mono2", np.stack([g] * 3, axis=-1))
    # The same file under a caller's window 40/400.
    g = window_linear(hu, 40, 400)
    meta["ct_mono2_w40_400"] = save_rgb(out, "ct_mono2_w40_400", np.stack([g] * 3, axis=-1))

    # MONOCHROME1 (X-ray: low values are white), window from the file, inverted after it.
    raw1 = ((x * 97 + y * 31) % 4096).astype(np.uint16)
    ds = dataset(40, 40, "MONOCHROME1")
    ds.WindowCenter, ds.WindowWidth = 2048, 4096
    ds.PixelData = raw1.tobytes()
    save(ds, "xray_mono1.dcm")
    g = 255 - window_linear(raw1.astype(np.float64), 2048, 4096)
    meta["xray_mono1"] = save_rgb(out, "xray_mono1", np.stack([g] * 3, axis=-1))

    # Three frames, no window in the file: min-max over the chosen frame.
    frames = [((x * (k + 1) * 13 + y * 7) % 4096).astype(np.uint16) for k in range(3)]
    ds = dataset(40, 40, "MONOCHROME2", frames=3)
    ds.PixelData = b"".join(f.tobytes() for f in frames)
    save(ds, "multiframe.dcm")
    f2 = frames[2].astype(np.float64)
    lo, hi = f2.min(), f2.max()
    g = np.clip(round_half_up((f2 - lo) / (hi - lo) * 255.0), 0, 255).astype(np.uint8)
    meta["multiframe_f2"] = save_rgb(out, "multiframe_f2", np.stack([g] * 3, axis=-1))

    # JPEG 2000 (not decodable by this build): a clear "unsupported transfer syntax".
    from pydicom.encaps import encapsulate

    ds = dataset(40, 40, "MONOCHROME2", ts=JPEG2000Lossless)
    ds.PixelData = encapsulate([b"\xff\x4f\xff\x51" + b"\x00" * 60])
    ds["PixelData"].VR = "OB"
    save(ds, "jpeg2000.dcm")
    return meta


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", required=True, help="SmolLM2 GGUF whose tokenizer and template are copied")
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    rng = np.random.default_rng(args.seed)
    write_text_model(os.path.join(args.out, "tiny-vlm.gguf"), args.base, rng)
    write_mmproj(os.path.join(args.out, "tiny-vlm-mmproj.gguf"), rng, N_EMBD)
    # A projector for a 576-wide text model: loading it with tiny-vlm.gguf must fail.
    write_mmproj(os.path.join(args.out, "mmproj-576.gguf"), rng, 576)
    # A ViT-sized encoder (224 px, 196 patches, 6 blocks of width 256) for the embedding-cache
    # benchmark: encoding costs what a small real encoder costs.
    write_mmproj(os.path.join(args.out, "bench-mmproj.gguf"), rng, N_EMBD, image_size=224, patch=16,
                 v_embd=256, v_ff=1024, v_blocks=6, v_heads=4)
    img_rng = np.random.default_rng(args.seed + 1)
    meta = {"images": write_images(args.out, img_rng), "patient": PATIENT}
    meta["images"].update(write_dicoms(args.out))
    with open(os.path.join(args.out, "fixtures.json"), "w") as f:
        json.dump(meta, f, indent=2, sort_keys=True)
    print(f"{args.out}: tiny VLM pair, mismatched mmproj, {len(meta['images'])} images with expected RGB")


if __name__ == "__main__":
    main()
